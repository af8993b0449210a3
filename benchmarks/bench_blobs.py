"""The blob store on the local folder against S3 (a private SeaweedFS on 127.0.0.1).

    .venv/bin/python benchmarks/bench_blobs.py            # 1,000 photos; crawl of 1,000
    .venv/bin/python benchmarks/bench_blobs.py --small    # 200 photos; crawl of 200

Two measures, each with both stores in the same process, so that the machine's load
weighs on both alike:

- ``put`` / ``get``: N crawled-size photos (50-300 KB JPEGs, benchmarks/bench_crawl.py)
  stored and read back through :class:`storage.blobs.BlobStore`, on 6 threads like the
  crawler's pipeline (``put`` includes the sha256, the fsyncs or the PUT);
- ``crawl``: the crawler benchmark (benchmarks/bench_crawl.py ``run_ours``) with local
  blobs and with S3 blobs, in ABBA order, each S3 run under a fresh prefix; it prints
  images/s and the crawler process's peak RSS.

Ratios are S3 / local: above 1 means S3 is faster. Target: crawl ratio >= 0.8.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_crawl import build_site, photos, rate, report, run_ours
from tests.s3_server import S3Server, SeaweedFS
from tests.site_fixture import serve

THREADS = 6
BUCKET = "bench"


def store_rates(store, bodies: list[bytes]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(puts/s, gets/s) of ``bodies`` through ``store`` on THREADS threads."""
    with ThreadPoolExecutor(THREADS) as pool:
        t0 = time.perf_counter()
        keys = list(pool.map(store.put_bytes, bodies))
        put = len(bodies) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = list(pool.map(store.read_bytes, keys))
        get = len(bodies) / (time.perf_counter() - t0)
    assert got == bodies
    return put, get


def bench_store(server: S3Server, bodies: list[bytes]) -> None:
    from storage.blobs import LocalBlobStore
    from storage.s3blobs import S3BlobStore

    mb = sum(len(b) for b in bodies) / 1e6
    with tempfile.TemporaryDirectory() as folder:
        local = store_rates(LocalBlobStore(Path(folder) / "objects"), bodies)
    s3 = store_rates(S3BlobStore(f"s3://{BUCKET}/store"), bodies)
    for name, (put, get) in (("local", local), ("s3", s3)):
        print(f"{name:6s} {len(bodies)} photos ({mb:.0f} MB): put {put:7.1f}/s  "
              f"get {get:7.1f}/s", flush=True)  # fmt: skip
    print(f"s3 / local: put {s3[0] / local[0]:.2f}x  get {s3[1] / local[1]:.2f}x", flush=True)


def bench_crawl(count: int, bodies: list[bytes], rounds: int) -> None:
    runs: dict[str, list[dict]] = {"local": [], "s3": []}
    with serve(build_site(count, bodies)) as site:
        for n in range(rounds):
            order = ("local", "s3") if n % 2 == 0 else ("s3", "local")
            for name in order:
                blobs = f"s3://{BUCKET}/crawl-{n}/objects" if name == "s3" else ""
                result = run_ours(site.url("/"), blobs)
                report(f"crawl/{name}", count, result)
                runs[name].append(result)
    rates = {name: rate(results) for name, results in runs.items()}
    peak = {name: max(r["peak_rss_mb"] for r in results) for name, results in runs.items()}
    print(f"crawl s3 / local images/s: {rates['s3'] / rates['local']:.2f}x "
          f"({rates['s3']:.1f} / {rates['local']:.1f}, over {rounds} run(s) each); "
          f"peak RSS {peak['local']:.0f} MB local, {peak['s3']:.0f} MB s3", flush=True)  # fmt: skip


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 photos instead of 1,000")
    parser.add_argument("--rounds", type=int, default=2, help="crawls of each store (2)")
    args = parser.parse_args()
    count = 200 if args.small else 1000
    bodies = photos(count)
    with tempfile.TemporaryDirectory() as root:
        weed = SeaweedFS(Path(root))
        try:
            server = weed.start()
            os.environ.update(server.env())
            server.client().create_bucket(Bucket=BUCKET)
            bench_store(server, bodies)
            bench_crawl(count, bodies, args.rounds)
        finally:
            weed.kill()


if __name__ == "__main__":
    main()
