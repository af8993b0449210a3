"""The crawl's progress, told to the process that started it while the crawl runs.

A Scrapy extension writes one line to stderr every ``DREAMCRAWL_PROGRESS_INTERVAL``
seconds (and when the spider closes): ``PREFIX`` followed by JSON counts of pages,
images kept, duplicates and rejections so far. :func:`crawler.api.run_crawl` reads
these lines and hands them to its ``on_progress`` callback, which the crawl flow turns
into log lines of its Prefect run; every other stderr line is kept for error reports.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PREFIX = "dreamcrawl-progress "


def parse_line(line: str) -> dict[str, Any] | None:
    """The counts of a progress line, or None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        counts = json.loads(line[len(PREFIX) :])
    except ValueError:
        return None
    return counts if isinstance(counts, dict) else None


class Progress:
    """Report the crawl's counters every few seconds (see the module docstring)."""

    def __init__(self, stats: Any, interval: float) -> None:
        self.stats = stats
        self.interval = interval
        self.loop: Any = None  # a twisted LoopingCall while the spider runs

    @classmethod
    def from_crawler(cls, crawler: Any) -> Progress:
        # Scrapy is imported here, in the crawler process: importing this module (the
        # parent reads progress lines with parse_line) must not import Scrapy.
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        interval = crawler.settings.getfloat("DREAMCRAWL_PROGRESS_INTERVAL")
        if interval <= 0:
            raise NotConfigured("progress reports are off")
        extension = cls(crawler.stats, interval)
        crawler.signals.connect(extension.opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.closed, signal=signals.spider_closed)
        return extension

    def counts(self) -> dict[str, int]:
        value = self.stats.get_value
        rejected = sum(
            v for k, v in self.stats.get_stats().items() if k.startswith("dreamcrawl/rejected/")
        )
        return {
            "pages": value("dreamcrawl/pages", 0),
            "images": value("dreamcrawl/image", 0) + value("dreamcrawl/near-duplicate", 0),
            "duplicates": value("dreamcrawl/duplicate", 0),
            "rejected": rejected,
        }

    def report(self) -> None:
        sys.stderr.write(PREFIX + json.dumps(self.counts()) + "\n")
        sys.stderr.flush()

    def opened(self, spider: Any) -> None:
        from twisted.internet import task

        self.loop = task.LoopingCall(self.report)
        self.loop.start(self.interval, now=False)

    def closed(self, spider: Any, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.report()
