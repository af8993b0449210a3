"""The crawler process: ``python -m crawler.run RUN_ID``.

:func:`crawler.api.run_crawl` starts this in a process of its own, because Scrapy's
reactor cannot be restarted within a process and its logging set-up would take over the
caller's (Prefect's) handlers. It reads what to crawl from the crawl run row, recovers
what a killed predecessor of the same run left, runs the spiders, and writes the run's
status and counts. Scrapy's log goes to ``<runs dir>/<run id>/crawl.log``.

Exit status: 0 finished, 3 interrupted (recorded), 4 stopped with its end unrecorded
because the catalog was still out of reach (the run row still says ``running``; one
line on stderr says why, and ``--resume`` finishes the run).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings

from crawler.labelling import text_only_keywords
from crawler.pipelines import STOPPED_BY
from crawler.run_state import (
    EXIT_INTERRUPTED,
    EXIT_UNRECORDED,
    count_new_images,
    done_urls,
    recover_run,
    run_counts,
)
from crawler.spiders.search import SearchSpider
from crawler.spiders.site import SiteSpider
from crawler.write_retry import RETRY_SECONDS, with_retries
from storage.db import Catalog, open_catalog
from storage.errors import CatalogUnavailable
from storage.models import CrawlRun, CrawlStatus, utcnow
from storage.settings import Settings, get_settings

log = logging.getLogger("dreamcrawl.crawler.run")

SITE = "site"
# finish_run's answer when the run's end could not be written to the catalog.
UNRECORDED = "unrecorded"


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB.

    Linux's ``ru_maxrss`` survives ``exec``: a child started from a large parent would
    report the parent's size. ``VmHWM`` belongs to the process's own address space.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scrapy_settings(run: CrawlRun, settings: Settings) -> ScrapySettings:
    """crawler.settings, then the run's options, then its ``-s NAME=value`` overrides."""
    config = run.settings or {}
    scrapy = ScrapySettings()
    scrapy.setmodule("crawler.settings", priority="project")
    options: dict[str, Any] = {
        "DREAMCRAWL_RUN_ID": run.id,
        "LOG_FILE": str(settings.runs_dir / str(run.id) / "crawl.log"),
    }
    if config.get("depth") is not None:
        options["DREAMCRAWL_DEPTH"] = config["depth"]
    if config.get("max_images") is not None:
        options["DREAMCRAWL_MAX_IMAGES"] = config["max_images"]
    if config.get("allow_private"):
        options["DREAMCRAWL_ALLOW_PRIVATE"] = True
    if config.get("content_check"):
        options["DREAMCRAWL_CONTENT_CHECK"] = True
    scrapy.setdict(options, priority="cmdline")
    scrapy.setdict(dict(config.get("overrides") or {}), priority="cmdline")
    return scrapy


def crawl(catalog: Catalog, run_id: int) -> str:
    """Run the crawl of ``run_id`` to its end; return its final status."""
    started, cpu_started = time.monotonic(), time.process_time()
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            raise SystemExit(f"crawl run {run_id} does not exist")
        config = dict(run.settings or {})
        keywords = list(run.keywords)
        sources = list(run.sources)
        options = scrapy_settings(run, catalog.settings)
    (catalog.settings.runs_dir / str(run_id)).mkdir(parents=True, exist_ok=True)
    recover_run(catalog, run_id)
    common = {
        "keywords": keywords,
        "done_urls": done_urls(catalog, run_id),
        "kept": count_new_images(catalog, run_id),
        "max_images": options.getint("DREAMCRAWL_MAX_IMAGES"),
    }
    process = CrawlerProcess(options)
    crawlers = []
    if SITE in sources:
        crawler = process.create_crawler(SiteSpider)
        process.crawl(
            crawler,
            start_urls=config.get("start_urls", []),
            depth=options.getint("DREAMCRAWL_DEPTH"),
            allowed_domains=options.getlist("DREAMCRAWL_ALLOWED_DOMAINS"),
            **common,
        )
        crawlers.append(crawler)
    search = [s for s in sources if s != SITE]
    if search:
        crawler = process.create_crawler(SearchSpider)
        process.crawl(crawler, sources=search, **common)
        crawlers.append(crawler)
    process.start()
    reasons = [c.stats.get_value("finish_reason") for c in crawlers]
    return finish_run(catalog, run_id, crawlers, reasons, started, cpu_started)


def finish_run(
    catalog: Catalog,
    run_id: int,
    crawlers: list[Any],
    reasons: list[Any],
    started: float,
    cpu_started: float,
) -> str:
    """Write the run's status, counts and process figures once its spiders have closed.

    The write is retried like the crawl's own (crawler.write_retry); if the catalog is
    still out of reach, the run row keeps saying ``running`` and this returns
    :data:`UNRECORDED`, having logged why.
    """
    status = (
        CrawlStatus.FINISHED if all(r == "finished" for r in reasons) else CrawlStatus.INTERRUPTED
    )
    stopped_by = [c.stats.get_value(STOPPED_BY) for c in crawlers]
    error = None
    if status != CrawlStatus.FINISHED:
        causes = [s for s in stopped_by if s]
        error = f"stopped: {', '.join(map(str, reasons))}" + (f" ({causes[0]})" if causes else "")
    seconds = max((c.settings.getfloat("DREAMCRAWL_WRITE_RETRY_SECONDS", RETRY_SECONDS)
                   for c in crawlers), default=RETRY_SECONDS)  # fmt: skip

    def record() -> str:
        _record_end(catalog, run_id, crawlers, reasons, status, error, started, cpu_started)
        return status

    try:
        return with_retries(record, seconds=seconds, what=f"the end of crawl run {run_id}")
    except CatalogUnavailable as exc:
        log.error("crawl run %d stopped (%s), but %s", run_id, error or status, exc)
        return UNRECORDED


def _record_end(
    catalog: Catalog,
    run_id: int,
    crawlers: list[Any],
    reasons: list[Any],
    status: str,
    error: str | None,
    started: float,
    cpu_started: float,
) -> None:
    counts = run_counts(catalog, run_id)
    for group in ("labels", "content_check"):
        found: dict[str, Any] = _stats(crawlers, f"dreamcrawl/{group}/")
        if found:
            counts[group] = found
    if any(c.settings.getbool("DREAMCRAWL_CONTENT_CHECK") for c in crawlers):
        # Keywords no ImageNet class falls under were accepted on their text alone.
        with catalog.session() as session:
            run = session.get(CrawlRun, run_id)
            keywords = list(run.keywords) if run is not None else []
        counts.setdefault("content_check", {})["text_only_keywords"] = text_only_keywords(keywords)
    counts["process"] = {
        "pages": sum(c.stats.get_value("dreamcrawl/pages", 0) for c in crawlers),
        "requests": sum(c.stats.get_value("downloader/request_count", 0) for c in crawlers),
        "bytes_downloaded": sum(
            c.stats.get_value("downloader/response_bytes", 0) for c in crawlers
        ),
        "not_considered": sum(c.stats.get_value("dreamcrawl/not_considered", 0) for c in crawlers),
        "seconds": round(time.monotonic() - started, 3),
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "finish_reasons": reasons,
    }
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        run.status = status
        run.finished_at = utcnow()
        run.counts = counts
        run.error = error


def _stats(crawlers: list[Any], prefix: str) -> dict[str, int]:
    """The crawlers' stats under ``prefix``, summed, without the prefix."""
    found: dict[str, int] = {}
    for crawler in crawlers:
        for key, value in crawler.stats.get_stats().items():
            if key.startswith(prefix):
                name = key[len(prefix) :]
                found[name] = found.get(name, 0) + int(value)
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m crawler.run RUN_ID", file=sys.stderr)
        return 2
    run_id = int(args[0])
    status = crawl(open_catalog(get_settings()), run_id)
    if status == UNRECORDED:
        print(f"its end could not be recorded: the catalog is out of reach (see "
              f"{get_settings().runs_dir / str(run_id) / 'crawl.log'}); "
              f"dreamcrawl crawl --resume {run_id} finishes it once the catalog is back",
              file=sys.stderr)  # fmt: skip
        return EXIT_UNRECORDED
    return 0 if status == CrawlStatus.FINISHED else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
