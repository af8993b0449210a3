"""The item pipeline: every item ends as catalog rows.

:class:`CatalogPipeline` writes a :class:`~crawler.items.RejectedItem` as a rejection
row, and validates, hashes and stores an :class:`~crawler.items.ImageItem` (blob plus
image and sighting rows, or a rejection) through :class:`crawler.writer.CatalogWriter`.

Validation, hashing and blob writes run on a pool of worker threads (Pillow's decoder,
hashlib and fsync release the GIL), and the catalog rows on the writer's one commit
thread, which commits the rows of every URL that is ready in one transaction. The
reactor thread only hands items over, so downloads go on meanwhile. Counters go to the
crawl stats as ``dreamcrawl/<outcome>`` and ``dreamcrawl/rejected/<reason>``.

A store that cannot be written (the blob store or the catalog, after the writer's
retries; see :class:`~storage.errors.StoreUnavailable`) is nobody's fault: the URL gets
no row, the crawl stops at once, and ``--resume`` fetches the URL again.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapy.exceptions import DropItem, NotConfigured

from crawler import reasons
from crawler.items import ImageItem, OutcomeKind, RejectedItem
from crawler.labelling import start_labels
from crawler.validate import Limits
from crawler.writer import CatalogWriter, NearDuplicates, Outcome, Pending
from storage.db import open_catalog
from storage.errors import BlobStoreUnavailable, CatalogUnavailable, StoreUnavailable
from storage.settings import Settings

log = logging.getLogger("dreamcrawl.crawler.pipelines")
# Threads that validate and store blobs: each image holds one for about 1-2 ms of
# decoding (GIL released) and one or two fsyncs, so a few more than the CPUs keep the
# disk and the cores busy while the reactor downloads (or wait on S3 round trips).
WORKER_THREADS = 6
# The finish reasons of a crawl stopped because a store could not be written.
STORE_UNAVAILABLE = "blob-store-unavailable"
CATALOG_UNAVAILABLE = "catalog-unavailable"
# The stat holding what stopped it, for the run's error (crawler.run.finish_run).
STOPPED_BY = "dreamcrawl/stopped_by"


def limits_from(settings: Any) -> Limits:
    """Validation limits from DREAMCRAWL_* (and DOWNLOAD_MAXSIZE) settings."""
    return Limits(
        min_width=settings.getint("DREAMCRAWL_MIN_WIDTH"),
        min_height=settings.getint("DREAMCRAWL_MIN_HEIGHT"),
        max_pixels=settings.getint("DREAMCRAWL_MAX_PIXELS"),
        max_bytes=settings.getint("DOWNLOAD_MAXSIZE") or 2**62,
        formats=frozenset(f.upper() for f in settings.getlist("DREAMCRAWL_FORMATS")),
    )


class CatalogPipeline:
    """Store items of the crawl run named by the ``DREAMCRAWL_RUN_ID`` setting."""

    writer: CatalogWriter

    def __init__(self, crawler: Any) -> None:
        run_id = crawler.settings.getint("DREAMCRAWL_RUN_ID")
        if not run_id:
            raise NotConfigured("DREAMCRAWL_RUN_ID is not set")
        self.crawler = crawler
        self.stats = crawler.stats
        self.run_id = run_id
        self._stopping: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> CatalogPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        settings = self.crawler.settings
        catalog = open_catalog(Settings.from_env())
        self.labels, self.content_check = start_labels(
            catalog,
            labels=False,  # a labeller process of its own labels the run (crawler.label_run)
            content_check=settings.getbool("DREAMCRAWL_CONTENT_CHECK"),
            top_k=settings.getint("DREAMCRAWL_CONTENT_TOP_K"),
        )
        self.writer = CatalogWriter(
            catalog,
            self.run_id,
            limits_from(settings),
            near_duplicate_distance=settings.getint("DREAMCRAWL_NEAR_DUPLICATE_DISTANCE"),
            near_duplicates=NearDuplicates(settings.get("DREAMCRAWL_NEAR_DUPLICATES")),
            labels=self.labels,
            content_check=self.content_check,
            retry_seconds=settings.getfloat("DREAMCRAWL_WRITE_RETRY_SECONDS"),
        )
        self.workers = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="dreamcrawl-validate")

    def close_spider(self) -> None:
        self.workers.shutdown()
        self.writer.close()
        if self.labels is not None:
            for status, count in self.labels.close().items():
                self.stats.set_value(f"dreamcrawl/labels/{status}", count)
        if self.content_check is not None:
            for outcome, count in self.content_check.counts.items():
                self.stats.set_value(f"dreamcrawl/content_check/{outcome}", count)

    async def process_item(self, item: Any) -> Any:
        try:
            return await self._process(item)
        except StoreUnavailable as exc:
            # Not the URL's fault: record nothing for it, stop the crawl; --resume
            # fetches it again once the store is back.
            self._stop(exc)
            url = getattr(getattr(item, "candidate", None), "url", "")
            raise DropItem(f"{_reason(exc)}: {url}") from exc

    async def _process(self, item: Any) -> Any:
        if isinstance(item, RejectedItem):
            await self._commit(self.writer.rejection(item.candidate, item.reason, item.detail))
            self._count(Outcome(OutcomeKind.REJECTED, item.reason))
            return item
        if not isinstance(item, ImageItem):
            return item
        candidate = item.candidate
        body, item.body = item.body, b""  # the bytes are not needed after this point
        loop = asyncio.get_running_loop()
        try:
            queued = await loop.run_in_executor(
                self.workers, self.writer.queue_image, candidate, body
            )
            outcome = await asyncio.wrap_future(queued)
        except StoreUnavailable:
            raise
        except Exception as exc:  # this URL's own failure (a row the catalog refused)
            log.exception("could not store %s", candidate.url)
            detail = f"{type(exc).__name__}: {exc}"
            outcome = await self._commit(self.writer.rejection(candidate, reasons.ERROR, detail))
        item.outcome = outcome.kind
        self._count(outcome, len(body))
        return item

    def _stop(self, exc: StoreUnavailable) -> None:
        if self._stopping is None:
            log.error("stopping the crawl: %s", exc)
            self.stats.set_value(STOPPED_BY, str(exc))
            engine = self.crawler.engine
            self._stopping = asyncio.ensure_future(engine.close_spider_async(reason=_reason(exc)))

    async def _commit(self, pending: Pending) -> Outcome:
        """Queue the rows for the writer thread; wait (without a thread) for the commit."""
        return await asyncio.wrap_future(self.writer.submit(pending))

    def _count(self, outcome: Outcome, size: int = 0) -> None:
        self.stats.inc_value(f"dreamcrawl/{outcome.kind}")
        if outcome.reason:
            self.stats.inc_value(f"dreamcrawl/rejected/{outcome.reason}")
        else:
            self.stats.inc_value("dreamcrawl/bytes_stored", size)


def _reason(exc: StoreUnavailable) -> str:
    """The crawl's finish reason when ``exc`` stopped it."""
    if isinstance(exc, CatalogUnavailable):
        return CATALOG_UNAVAILABLE
    if isinstance(exc, BlobStoreUnavailable):
        return STORE_UNAVAILABLE
    return "store-unavailable"
