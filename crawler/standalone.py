"""A plain ``scrapy crawl`` records its own crawl run, as ``dreamcrawl crawl`` does.

``dreamcrawl crawl`` and the Prefect flows (:func:`crawler.api.run_crawl`) record the
crawl run first and name it in the ``DREAMCRAWL_RUN_ID`` setting of the crawler
process. Started with Scrapy's own tool from the repository
(``scrapy crawl site -a keywords=cat -a start_urls=URL``), no run exists yet: this
extension records one from the spider's arguments before the item pipeline opens, and
writes its status and counts when the spider closes. The run is then listed, checked and
resumable (``dreamcrawl crawl --resume RUN``) like any other.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured, UsageError

from crawler.api import CrawlRequest, create_run
from crawler.run import finish_run
from crawler.spiders.base import KeywordSpider
from storage.db import Catalog, open_catalog
from storage.errors import UserError
from storage.settings import get_settings

log = logging.getLogger("dreamcrawl.crawler.standalone")


class StandaloneRun:
    """Own the crawl run of a crawl that was started without one."""

    def __init__(self, crawler: Any, catalog: Catalog, run_id: int) -> None:
        self.crawler = crawler
        self.catalog = catalog
        self.run_id = run_id
        self.started, self.cpu_started = time.monotonic(), time.process_time()

    @classmethod
    def from_crawler(cls, crawler: Any) -> StandaloneRun:
        if crawler.settings.getint("DREAMCRAWL_RUN_ID"):
            raise NotConfigured("the crawl run was recorded by whoever started this crawl")
        spider = crawler.spider
        if not isinstance(spider, KeywordSpider):
            raise NotConfigured("not a dreamcrawl spider")
        settings = crawler.settings
        catalog = open_catalog(get_settings())
        try:
            request = CrawlRequest(
                keywords=spider.keywords,
                start_urls=getattr(spider, "start_urls", ()),
                sources=getattr(spider, "source_names", None) or [spider.source_name],
                max_images=spider.max_images,
                depth=getattr(spider, "depth", None),
                allow_private=settings.getbool("DREAMCRAWL_ALLOW_PRIVATE"),
            )
            run_id = create_run(catalog, request)
        except UserError as exc:
            raise UsageError(str(exc)) from None
        # Settings are frozen right after the extensions are built: the pipeline sees it.
        settings.set("DREAMCRAWL_RUN_ID", run_id, priority="cmdline")
        log.info("crawl run %d recorded in %s", run_id, catalog.settings.db_url)
        extension = cls(crawler, catalog, run_id)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_closed(self, spider: Any, reason: str) -> None:
        """The item pipeline has closed (every row committed): close the run."""
        status = finish_run(
            self.catalog, self.run_id, [self.crawler], [reason], self.started, self.cpu_started
        )
        log.info("crawl run %d %s (see `dreamcrawl catalog show run %d`)", self.run_id, status,
                 self.run_id)  # fmt: skip
