"""Crawler throughput against a plain Scrapy ImagesPipeline spider, on 127.0.0.1.

    .venv/bin/python benchmarks/bench_crawl.py            # 1,000 photos, then 5,000
    .venv/bin/python benchmarks/bench_crawl.py --small    # 200, then 1,000 (a quick run)
    .venv/bin/python benchmarks/bench_crawl.py --no-large # the comparison alone

Each crawler runs twice on the smaller site (``--rounds``), in the order baseline, ours,
ours, baseline; the ratio is of their images/s over both runs.

One local server serves N photos of 50-300 KB (crops of scikit-image's sample photos),
20 to a page, all pages linked from the index. In the same run, each crawler crawls it in
a fresh process with the same download settings (concurrency, robots.txt, no
AutoThrottle, which would only measure its own start-up ramp on a loopback server):

- ``baseline``: a Scrapy spider with ``scrapy.pipelines.images.ImagesPipeline`` (decodes,
  converts to RGB JPEG, writes files named by URL hash);
- ``dreamcrawl``: ``crawler.run_crawl`` (validates, sha256 + pHash, near-duplicate
  lookup, blob store with fsyncs, the catalog rows of each image all-or-nothing on
  SQLite, several complete images per transaction).

It prints images/s, MB/s, the CPU time the crawler process used during the crawl (all
its threads) and its peak RSS for both, and ours again at the larger size to show
memory stays flat. Run it in several processes and compare the median of the ratio line: both
crawlers share each process's machine load, so the ratio is what carries over.

Photos beyond the first 1,000 are the same pixels with a unique JPEG comment, so every
URL has distinct bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.site_fixture import LocalSite, serve

PER_PAGE = 20
UNIQUE_PHOTOS = 1000
SETTINGS = {
    "CONCURRENT_REQUESTS": "32",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "AUTOTHROTTLE_ENABLED": "False",
    "ROBOTSTXT_OBEY": "True",
    "LOG_LEVEL": "INFO",
}


def photos(count: int) -> list[bytes]:
    """``count`` distinct JPEGs of 50-300 KB."""
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    from tests.site_fixture import _BASES, encode

    bases = [Image.fromarray(np.asarray(getattr(skdata, n)())).convert("RGB") for n in _BASES]
    out = []
    for i in range(count):
        base = bases[i % len(bases)]
        step = i // len(bases)
        side = int(min(base.size) * (0.55 + 0.4 * ((step * 7) % 11) / 10))
        x = (step * 37) % max(1, base.width - side)
        y = (step * 53) % max(1, base.height - side)
        crop = base.crop((x, y, x + side, y + int(side * 0.75)))
        width = 640 + (i * 97) % 560
        while True:  # nudge the size into 50-300 KB
            image = crop.resize((width, int(width * 0.75)), Image.Resampling.BILINEAR)
            body = encode(image, quality=90 + i % 6)
            if len(body) < 50_000 and width < 2400:
                width = int(width * 1.3)
            elif len(body) > 300_000 and width > 200:
                width = int(width * 0.8)
            else:
                break
        out.append(body)
    return out


def with_comment(jpeg: bytes, n: int) -> bytes:
    """The same JPEG with a comment segment that makes its bytes unique."""
    text = f"copy {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def build_site(count: int, bodies: list[bytes]) -> LocalSite:
    site = LocalSite()

    def image(request: BaseHTTPRequestHandler) -> None:
        n = int(request.path.rsplit("/", 1)[1].split(".")[0])
        body = bodies[n % len(bodies)]
        if n >= len(bodies):
            body = with_comment(body, n)
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    pages = []
    for p in range(0, count, PER_PAGE):
        tags = "".join(
            f'<img src="/img/{n}.jpg" alt="cat photo {n}">'
            for n in range(p, min(p + PER_PAGE, count))
        )
        site.page(f"/page{p // PER_PAGE}.html", f"<title>Cats {p}</title><body>{tags}</body>")
        pages.append(f'<a href="/page{p // PER_PAGE}.html">cats</a>')
        for n in range(p, min(p + PER_PAGE, count)):
            site.handle(f"/img/{n}.jpg", image)
    site.page("/", "<title>Cat photos</title>" + "".join(pages))
    site.file("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")
    return site


# -- the baseline, run as a child process -------------------------------------------


def peak_rss_mb() -> float:
    """The process's own peak RSS (VmHWM), as crawler.run reports it for ours: Linux's
    ru_maxrss would carry over this benchmark's own size into the child."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def baseline_child(start_url: str, store: str) -> None:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    class Baseline(scrapy.Spider):
        name = "baseline"
        start_urls = (start_url,)

        def parse(self, response):
            urls = [response.urljoin(u) for u in response.css("img::attr(src)").getall()]
            if urls:
                yield {"image_urls": urls}
            yield from response.follow_all(css="a::attr(href)")

    started, cpu_started = time.monotonic(), time.process_time()
    process = CrawlerProcess(
        {
            **SETTINGS,
            "ITEM_PIPELINES": {"scrapy.pipelines.images.ImagesPipeline": 1},
            "IMAGES_STORE": store,
            "LOG_FILE": os.path.join(store, "crawl.log"),
            "TELNETCONSOLE_ENABLED": False,
            "REMOTE_CONTROL_ENABLED": False,
        }
    )
    crawler = process.create_crawler(Baseline)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats()
    print(
        json.dumps(
            {
                "seconds": time.monotonic() - started,
                "cpu": time.process_time() - cpu_started,
                "images": stats.get("file_status_count/downloaded", 0),
                "bytes": stats.get("downloader/response_bytes", 0),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def run_baseline(start_url: str) -> dict:
    with tempfile.TemporaryDirectory() as store:
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, __file__, "--baseline-child", start_url, store],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["wall"] = time.monotonic() - t0
    return result


def run_ours(start_url: str, blobs: str = "") -> dict:
    """Our crawler in a fresh data folder; ``blobs``: its DREAMCRAWL_BLOBS ("": local)."""
    from crawler import run_crawl
    from storage.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env({"DREAMCRAWL_HOME": home, "DREAMCRAWL_BLOBS": blobs})
        t0 = time.monotonic()
        result = run_crawl(
            keywords=["cat"],
            start_urls=[start_url],
            allow_private=True,
            overrides=[f"{k}={v}" for k, v in SETTINGS.items()],
            settings=settings,
        )
        wall = time.monotonic() - t0
        process = result.counts["process"]
    return {
        "seconds": process["seconds"],
        "wall": wall,
        "cpu": process["cpu_seconds"],
        "images": result.counts["new_images"],
        "bytes": process["bytes_downloaded"],
        "peak_rss_mb": process["peak_rss_mb"],
        "status": result.status,
    }


def rate(results: list[dict]) -> float:
    """Images per second over several runs (their images over their seconds)."""
    return sum(r["images"] for r in results) / sum(r["seconds"] for r in results)


def report(name: str, count: int, r: dict) -> str:
    rate = r["images"] / r["seconds"]
    line = (
        f"{name:10s} {count:6d} photos: {r['images']:6d} stored in {r['seconds']:6.1f} s "
        f"(wall {r['wall']:5.1f} s)  {rate:6.1f} images/s  "
        f"{r['bytes'] / 1e6 / r['seconds']:5.1f} MB/s  CPU {r['cpu']:5.1f} s  "
        f"peak RSS {r['peak_rss_mb']:5.0f} MB"
    )
    print(line, flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="200 then 1,000 photos")
    parser.add_argument("--no-large", action="store_true", help="skip the memory run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each crawler, in ABBA order (2)"
    )
    parser.add_argument("--baseline-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_child:
        baseline_child(*args.baseline_child)
        return
    sizes = (200, 1000) if args.small else (1000, 5000)
    bodies = photos(min(UNIQUE_PHOTOS, sizes[0]))
    sizes_kb = sorted(len(b) / 1024 for b in bodies)
    print(f"photos: {len(bodies)} unique, {sizes_kb[0]:.0f}-{sizes_kb[-1]:.0f} KiB, "
          f"median {sizes_kb[len(sizes_kb) // 2]:.0f} KB; {os.cpu_count()} CPUs")  # fmt: skip
    runs: dict[str, list[dict]] = {"baseline": [], "dreamcrawl": []}
    with serve(build_site(sizes[0], bodies)) as site:
        for n in range(args.rounds):
            # ABBA: alternate which crawler goes first, so that a machine load that
            # rises or falls during the run weighs on both alike.
            order = ("baseline", "dreamcrawl") if n % 2 == 0 else ("dreamcrawl", "baseline")
            for name in order:
                result = (run_baseline if name == "baseline" else run_ours)(site.url("/"))
                report(name, sizes[0], result)
                runs[name].append(result)
    rates = {name: rate(results) for name, results in runs.items()}
    print(f"dreamcrawl / baseline images/s: {rates['dreamcrawl'] / rates['baseline']:.2f}x "
          f"({rates['dreamcrawl']:.1f} / {rates['baseline']:.1f}, "
          f"over {args.rounds} run(s) each)", flush=True)  # fmt: skip
    ours = runs["dreamcrawl"][-1]
    if args.no_large:
        return
    with serve(build_site(sizes[1], bodies)) as site:
        large = run_ours(site.url("/"))
        report("dreamcrawl", sizes[1], large)
    print(f"peak RSS {sizes[0]} -> {sizes[1]} photos: "
          f"{ours['peak_rss_mb']:.0f} -> {large['peak_rss_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
