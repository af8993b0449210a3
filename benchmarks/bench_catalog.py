"""Catalog query speed at a million rows, with and without migration 0002's indexes.

    .venv/bin/python benchmarks/bench_catalog.py            # 1,000,000 images + dreams
    .venv/bin/python benchmarks/bench_catalog.py --rows 20000   # a quick run

It builds a SQLite catalog of N images, N sightings, N stylizations, N/10 rejections
and N/1000 crawl runs (bulk ``executemany`` in big batches), then times the listings
analysts use most, through the same code as ``dreamcrawl catalog list``/``show``:
first without 0002's indexes (the baseline), then with them, in the same process, and
prints p50/p95 and the ratio. Last, it exports 10 % and 100 % of the stylizations to
CSV and Parquet in fresh processes and prints each one's peak RSS: streaming means the
peak does not grow with the row count. Figures go to docs/benchmarks.md ("## Catalog").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage.db import dispose_engines, open_catalog  # noqa: E402
from storage.lineage import lineage  # noqa: E402
from storage.queries import KINDS, Filters, Query, list_rows, parse_sort  # noqa: E402
from storage.settings import Settings  # noqa: E402

INDEXES = {
    "ix_stylizations_preset_created_at": "stylizations (preset, created_at)",
    "ix_stylizations_status_created_at": "stylizations (status, created_at)",
    "ix_images_status_created_at": "images (status, created_at)",
    "ix_rejections_url": "rejections (url)",
    "ix_rejections_crawl_run_id_reason": "rejections (crawl_run_id, reason)",
    "ix_crawl_runs_started_at": "crawl_runs (started_at)",
    "ix_sightings_crawl_run_id_duplicate_image_id": "sightings (crawl_run_id, duplicate, image_id)",
    "ix_sightings_keywords_text": "sightings (CAST(keywords AS TEXT))",
}
KEYWORDS = [f"kw{i:02d}" for i in range(40)] + ["cat", "dog", "sea", "forest", "city"]
SOURCES = ["site", "wikimedia", "openverse", "local", "flickr"]
PRESETS = {
    "fast": {"layers": {"mixed3": 1.0, "mixed5": 1.5}, "octaves": 2, "steps": 5},
    "classic": {"layers": {"mixed4": 1.0}, "octaves": 4, "steps": 10},
    "tf-tutorial": {"layers": {"mixed3": 1.0, "mixed5": 1.0}, "octaves": 5, "steps": 100},
    "keras-example": {
        "layers": {"mixed4": 1.0, "mixed5": 1.5, "mixed6": 2.0, "mixed7": 2.5},
        "octaves": 3,
        "steps": 20,
    },
    "paper-single-channel": {"layers": ["mixed4"], "channel": "mixed4:97", "octaves": 1},
    "paper-multilayer": {"layers": ["mixed3", "mixed5", "mixed8"], "octaves": 1},
    "paper-octave": {"layers": ["mixed5"], "octaves": 4, "steps": 20},
}
REASONS = ["too-small", "not-an-image", "duplicate", "robots", "http-error", "too-large"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
FMT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores timestamps in SQLite


def ts(moment: datetime) -> str:
    return moment.strftime(FMT)


def batched(rows, size=50_000):  # type: ignore[no-untyped-def]
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def generate(db: Path, n: int, seed: int = 1) -> dict[str, int]:
    """Fill the catalog at ``db`` with ``n`` images/sightings/stylizations."""
    rng = random.Random(seed)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    runs = max(1, n // 1000)
    span = timedelta(days=365)
    run_keywords = []
    for r in range(1, runs + 1):
        kws = rng.sample(KEYWORDS, rng.randint(1, 3))
        if r == 1:
            kws = ["rare", *kws]  # only the oldest run: the worst case of --keyword
        run_keywords.append(kws)
        start = T0 + span * (r - 1) / runs
        conn.execute(
            "INSERT INTO crawl_runs (id, kind, keywords, sources, settings, status, started_at,"
            " finished_at, counts) VALUES (?, 'crawl', ?, ?, '{}', 'finished', ?, ?, '{}')",
            (r, json.dumps(kws), json.dumps(rng.sample(SOURCES, 2)), ts(start),
             ts(start + timedelta(minutes=30))),
        )  # fmt: skip

    def images():  # type: ignore[no-untyped-def]
        for i in range(1, n + 1):
            sha = hashlib.sha256(i.to_bytes(8, "little")).hexdigest()
            status = "broken" if i % 97 == 0 else "ok"
            created = ts(T0 + span * i / n)
            yield (i, sha, 640, 480, "JPEG", 50_000 + i % 1000, sha, status, created)

    for batch in batched(images()):
        conn.executemany(
            "INSERT INTO images (id, sha256, width, height, format, bytes, blob_key, status,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )

    def sightings():  # type: ignore[no-untyped-def]
        for i in range(1, n + 1):
            run = min(runs, 1 + (i - 1) * runs // n)
            kws = run_keywords[run - 1]
            matched = kws[: 1 + i % len(kws)]
            yield (
                i, run, f"https://example.org/img/{i}.jpg", f"https://example.org/p/{i // 20}",
                SOURCES[i % len(SOURCES)], json.dumps(matched), "[]", 0.5, i % 50 == 0, False,
                "CC BY 4.0", f"author {i % 5000}", ts(T0 + span * i / n),
            )  # fmt: skip

    for batch in batched(sightings()):
        conn.executemany(
            "INSERT INTO sightings (image_id, crawl_run_id, url, page_url, source, keywords,"
            " matches, relevance, duplicate, near_duplicate, licence, attribution, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )

    def rejections():  # type: ignore[no-untyped-def]
        for j in range(1, n // 10 + 1):
            run = 1 + j % runs
            yield (run, f"https://example.org/bad/{j}.gif", None, REASONS[j % len(REASONS)],
                   "detail", ts(T0 + span * j / max(1, n // 10)))  # fmt: skip

    for batch in batched(rejections()):
        conn.executemany(
            "INSERT INTO rejections (crawl_run_id, url, page_url, reason, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            batch,
        )

    names = list(PRESETS)
    params = {p: json.dumps(v | {"seed": 0}, sort_keys=True) for p, v in PRESETS.items()}
    hashes = {p: hashlib.sha256(t.encode()).hexdigest() for p, t in params.items()}

    def stylizations():  # type: ignore[no-untyped-def]
        for i in range(1, n + 1):
            preset = names[rng.randrange(len(names))]
            roll = rng.random()
            status = "done" if roll < 0.9 else "failed" if roll < 0.95 else "pending"
            created = T0 + span * i / n + timedelta(minutes=rng.randint(1, 600))
            timings = json.dumps([round(rng.uniform(0.2, 3.0), 3) for _ in range(3)])
            key = hashlib.sha256(b"out" + i.to_bytes(8, "little")).hexdigest()
            done = status == "done"
            yield (
                i, preset, params[preset], hashes[preset], "default_1.pt", "7ff4" * 16, "0.1.0",
                0, "CPU", timings, "{}", key if done else None, key if done else None, status,
                ts(created), ts(created), ts(created + timedelta(seconds=5)) if done else None,
            )  # fmt: skip

    for batch in batched(stylizations()):
        conn.executemany(
            "INSERT INTO stylizations (image_id, preset, params_json, params_hash, weights_id,"
            " weights_sha256, code_version, seed, device, octave_timings, objective_values,"
            " output_blob_key, output_sha256, status, attempts, created_at, started_at,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            batch,
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"runs": runs, "rejections": n // 10}


def timed(fn: Callable[[], object], repeats: int, budget_s: float) -> list[float]:
    """Run ``fn`` up to ``repeats`` times (at least 3, at most ``budget_s`` seconds)."""
    fn()  # warm the page cache and the statement cache once
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - started < budget_s):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cases(engine, catalog, n: int, runs: int, indexed: bool) -> dict[str, Callable[[], object]]:  # type: ignore[no-untyped-def]
    """The listings analysts run most, as `dreamcrawl catalog …` runs them.

    Without the indexes, --keyword cannot look keyword lists up (that walk needs
    ix_sightings_keywords_text), so the baseline checks rows one by one.
    """
    lookup = None if indexed else False
    last_week = T0 + timedelta(days=358)
    month = T0 + timedelta(days=335)
    sha = hashlib.sha256((n // 2).to_bytes(8, "little")).hexdigest()

    def listing(kind: str, limit: int = 50, **filters: object) -> Callable[[], object]:
        k = KINDS[kind]
        query = Query(k, Filters(**filters), sort=parse_sort(k, None), limit=limit)  # type: ignore[arg-type]
        return lambda: list_rows(engine, query, keyword_lookup=lookup)

    return {
        "list (newest 50 stylizations)": listing("stylizations"),
        "list --preset fast": listing("stylizations", preset=("fast",)),
        "list --status failed": listing("stylizations", status=("failed",)),
        "list --preset classic --status done --since 30d": listing(
            "stylizations", preset=("classic",), status=("done",), since=month
        ),
        "list --since 7d": listing("stylizations", since=last_week),
        "list --keyword cat": listing("stylizations", keyword=("cat",)),
        "list --keyword rare (only in the oldest run)": listing("stylizations", keyword=("rare",)),
        "list --layer mixed4": listing("stylizations", layer=("mixed4",)),
        "list --source wikimedia": listing("stylizations", source=("wikimedia",)),
        "list --kind images --status broken": listing("images", status=("broken",)),
        "list --kind runs": listing("runs"),
        "list --kind rejections --run N": listing("rejections", run=(runs // 2,)),
        "show SHA-PREFIX": lambda: lineage(catalog, sha[:10]),
    }


def measure(label: str, tests: dict[str, Callable[[], object]], repeats: int, budget: float):  # type: ignore[no-untyped-def]
    results = {}
    for name, fn in tests.items():
        times = timed(fn, repeats, budget)
        results[name] = (p(times, 0.5) * 1000, p(times, 0.95) * 1000, len(times))
        print(f"  [{label}] {name}: p50 {results[name][0]:.2f} ms, p95 {results[name][1]:.2f} ms"
              f" ({len(times)} runs)", flush=True)  # fmt: skip
    return results


def export_rss(home: Path, out: Path, limit: int | None) -> tuple[float, float]:
    """Peak RSS (MiB) and seconds of `catalog export` in a fresh process."""
    argv = ["catalog", "export", str(out), "--batch-size", "10000"]
    if limit:
        argv += ["--limit", str(limit)]
    code = (
        "import resource, sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    env = os.environ | {"DREAMCRAWL_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, cwd=REPO, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return int(done.stdout.split()[-1]) / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="images (and dreams)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per query")
    parser.add_argument("--budget", type=float, default=20.0, help="max seconds per query")
    parser.add_argument("--no-export", action="store_true", help="skip the export part")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-catalog-"))
    home = work / "home"
    os.environ["DREAMCRAWL_HOME"] = str(home)
    os.environ.pop("DREAMCRAWL_DB_URL", None)
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    db = home / "catalog.sqlite"
    print(f"SQLite {sqlite3.sqlite_version}, catalog at {db}", flush=True)
    with catalog.engine.begin() as conn:
        for name in INDEXES:
            conn.exec_driver_sql(f"DROP INDEX {name}")
    dispose_engines()

    started = time.perf_counter()
    counts = generate(db, args.rows)
    load_s = time.perf_counter() - started
    print(
        f"generated {args.rows:,} images, sightings and stylizations, {counts['rejections']:,} "
        f"rejections, {counts['runs']:,} runs in {load_s:.1f} s "
        f"({3 * args.rows / load_s:,.0f} rows/s); file {db.stat().st_size / 2**20:,.0f} MiB",
        flush=True,
    )

    catalog = open_catalog(settings)
    tests = cases(catalog.engine, catalog, args.rows, counts["runs"], indexed=False)
    print("baseline: without migration 0002's indexes", flush=True)
    base = measure("baseline", tests, args.repeats, args.budget)
    started = time.perf_counter()
    raw = sqlite3.connect(db, isolation_level=None)
    for name, target in INDEXES.items():
        raw.execute(f"CREATE INDEX {name} ON {target}")
    raw.close()
    print(f"created the indexes in {time.perf_counter() - started:.1f} s", flush=True)
    dispose_engines()
    catalog = open_catalog(settings)
    tests = cases(catalog.engine, catalog, args.rows, counts["runs"], indexed=True)
    print("with migration 0002's indexes", flush=True)
    indexed = measure("indexed", tests, args.repeats, args.budget)

    print(f"\n| query ({args.rows:,} rows, SQLite) | baseline p50 / p95 ms | indexed p50 / p95 ms"
          " | p95 speed-up |\n|---|---:|---:|---:|")  # fmt: skip
    for name in tests:
        b, i = base[name], indexed[name]
        print(f"| `{name}` | {b[0]:.1f} / {b[1]:.1f} | {i[0]:.1f} / {i[1]:.1f} "
              f"| {b[1] / i[1]:.1f}× |")  # fmt: skip

    if not args.no_export:
        print("\n| export (stylizations, all columns) | rows | seconds | peak RSS MiB |")
        print("|---|---:|---:|---:|")
        for fmt in ("csv", "parquet"):
            for limit in (args.rows // 10, None):
                out = work / f"export-{limit or 'all'}.{fmt}"
                rss, secs = export_rss(home, out, limit)
                rows = limit or args.rows
                print(f"| {fmt} | {rows:,} | {secs:.1f} | {rss:.0f} |", flush=True)
                out.unlink()


if __name__ == "__main__":
    main()
