"""The item pipeline: every item ends as catalog rows.

:class:`CatalogPipeline` writes a :class:`~crawler.items.RejectedItem` as a rejection
row, and validates, hashes and stores an :class:`~crawler.items.ImageItem` (blob plus
image and sighting rows, or a rejection) through :class:`crawler.store.CatalogWriter`.

The work runs on worker threads (Pillow and hashlib release the GIL), so decoding and
catalog writes overlap with downloads. Counters go to the crawl stats as
``dreamcrawl/<outcome>`` and ``dreamcrawl/rejected/<reason>``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy.exceptions import NotConfigured

from crawler import reasons
from crawler.items import ImageItem, RejectedItem
from crawler.store import Candidate, CatalogWriter, Outcome
from crawler.validate import Limits
from pipeline.config import Settings
from pipeline.log import get_logger
from storage.db import open_catalog

log = get_logger("crawler.pipelines")


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

    @classmethod
    def from_crawler(cls, crawler: Any) -> CatalogPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        settings = self.crawler.settings
        self.writer = CatalogWriter(
            open_catalog(Settings.from_env()),
            self.run_id,
            limits_from(settings),
            near_duplicate_distance=settings.getint("DREAMCRAWL_NEAR_DUPLICATE_DISTANCE"),
            near_duplicates=settings.get("DREAMCRAWL_NEAR_DUPLICATES"),
        )

    def close_spider(self) -> None:
        self.writer.close()

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, RejectedItem):
            await asyncio.to_thread(
                self.writer.record_rejection, item.url, item.page_url, item.reason, item.detail
            )
            self._count(Outcome("rejected", item.reason))
            return item
        if not isinstance(item, ImageItem):
            return item
        candidate = Candidate(
            url=item.url,
            page_url=item.page_url,
            source=item.source,
            keywords=item.keywords,
            matches=item.matches,
            relevance=item.relevance,
            licence=item.licence,
            attribution=item.attribution,
        )
        body, item.body = item.body, b""  # the bytes are not needed after this point
        outcome = await asyncio.to_thread(self._store, candidate, body)
        item.outcome = outcome.kind
        self._count(outcome, len(body))
        return item

    def _count(self, outcome: Outcome, size: int = 0) -> None:
        self.stats.inc_value(f"dreamcrawl/{outcome.kind}")
        if outcome.reason:
            self.stats.inc_value(f"dreamcrawl/rejected/{outcome.reason}")
        else:
            self.stats.inc_value("dreamcrawl/bytes_stored", size)

    def _store(self, candidate: Candidate, body: bytes) -> Outcome:
        try:
            return self.writer.record_image(candidate, body)
        except Exception as exc:  # a catalog failure must still leave a row if it can
            log.exception("could not store %s", candidate.url)
            detail = f"{type(exc).__name__}: {exc}"
            self.writer.record_rejection(candidate.url, candidate.page_url, reasons.ERROR, detail)
            return Outcome("rejected", reasons.ERROR)
