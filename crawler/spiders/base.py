"""What every dreamcrawl spider shares: image requests, failures as rejections, budget.

Each URL is considered once per crawl run (a set of seen URLs, pre-filled with the URLs
the run already ended when it resumes), and leaves as exactly one item: the image bytes,
or a :class:`~crawler.items.RejectedItem` built from the download failure. Requests are
``dont_filter`` so that Scrapy's duplicate filter never drops a redirect silently; the
seen set does that job instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, UsageError
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import defer, error
from twisted.python.failure import Failure

from crawler import reasons
from crawler.items import Candidate, ImageItem, OutcomeKind, RejectedItem
from crawler.middlewares import Refused

IMAGE_PRIORITY = 10
REQUIRED_EXAMPLES = {
    "keywords": "cat,kitten",
    "start_urls": "https://example.org/",
    "sources": "commons",
}
CANDIDATE = "dreamcrawl_candidate"
BUDGETED = "dreamcrawl_budgeted"


def failure_reason(failure: Failure) -> tuple[str, str]:
    """The rejection reason and detail of a failed download."""
    exc = failure.value
    if isinstance(exc, Refused):
        return exc.reason, exc.detail
    if isinstance(exc, HttpError):
        return reasons.http_status(exc.response.status), f"HTTP {exc.response.status}"
    if isinstance(exc, IgnoreRequest):
        text = str(exc)
        if "robots.txt" in text:
            return reasons.ROBOTS, text
        if "redirections" in text:
            return reasons.TOO_MANY_REDIRECTS, text
        return reasons.ERROR, text or "request ignored"
    if failure.check(
        scrapy.exceptions.DownloadTimeoutError, error.TimeoutError, error.TCPTimedOutError
    ):
        return reasons.TIMEOUT, str(exc) or "download timed out"
    if failure.check(scrapy.exceptions.DownloadCancelledError, defer.CancelledError):
        return reasons.TOO_LARGE, str(exc) or "download cancelled: larger than DOWNLOAD_MAXSIZE"
    if failure.check(scrapy.exceptions.CannotResolveHostError, error.DNSLookupError):
        return reasons.CONNECTION, f"cannot resolve host: {exc}"
    if failure.check(
        scrapy.exceptions.DownloadConnectionRefusedError,
        scrapy.exceptions.DownloadFailedError,
        scrapy.exceptions.ResponseDataLossError,
        error.ConnectError,
        error.ConnectionLost,
        error.ConnectionDone,
    ):
        return reasons.CONNECTION, f"{type(exc).__name__}: {exc}"
    return reasons.ERROR, f"{type(exc).__name__}: {exc}"


def as_list(value: str | Iterable[str]) -> list[str]:
    """A spider argument as a list: ``scrapy crawl -a`` gives "a,b" strings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


def original_url(request: Request) -> str:
    """The URL as first considered, before any redirect."""
    chain = request.meta.get("redirect_urls")
    return chain[0] if chain else request.url


class KeywordSpider(scrapy.Spider):
    """Base of our spiders. ``max_images`` counts new images kept by this crawl run."""

    source_name = "site"
    # Spider arguments without which a plain ``scrapy crawl`` would crawl nothing.
    required_args: tuple[str, ...] = ("keywords",)

    def __init__(
        self,
        *args: Any,
        keywords: list[str],
        done_urls: Iterable[str] = (),
        kept: int = 0,
        max_images: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.keywords = as_list(keywords)
        self.seen: set[str] = set(done_urls)
        self.max_images = int(max_images)
        self.kept = int(kept)
        self.in_flight = 0
        self.waiting: deque[Request] = deque()
        self.not_considered = 0

    @classmethod
    def setting_defaults(cls, settings: Any) -> dict[str, Any]:
        """Spider arguments a plain ``scrapy crawl`` leaves out, from the settings."""
        return {"max_images": settings.getint("DREAMCRAWL_MAX_IMAGES")}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> KeywordSpider:
        for name, value in cls.setting_defaults(crawler.settings).items():
            kwargs.setdefault(name, value)
        missing = [name for name in cls.required_args if not kwargs.get(name)]
        if missing:
            example = " ".join(f"-a {name}={REQUIRED_EXAMPLES[name]}" for name in missing)
            raise UsageError(f"scrapy crawl {cls.name} needs {example} (comma-separated lists)")
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.item_finished, signal=signals.item_scraped)
        crawler.signals.connect(spider.item_finished, signal=signals.item_dropped)
        crawler.signals.connect(spider.item_finished, signal=signals.item_error)
        crawler.signals.connect(spider.idle, signal=signals.spider_idle)
        return spider

    # -- considering URLs ---------------------------------------------------------

    def first_time(self, url: str) -> bool:
        """True the first time this run considers ``url``."""
        if url in self.seen:
            return False
        self.seen.add(url)
        return True

    @property
    def budget_full(self) -> bool:
        return bool(self.max_images) and self.kept + self.in_flight >= self.max_images

    def image_request(self, candidate: Candidate, **meta: Any) -> Iterator[Request]:
        """Schedule a download of the candidate image (now, or when the budget allows)."""
        request = Request(
            candidate.url,
            callback=self.parse_image,
            errback=self.download_failed,
            priority=IMAGE_PRIORITY,
            dont_filter=True,
            meta={CANDIDATE: candidate, BUDGETED: True, **meta},
        )
        self.waiting.append(request)
        yield from self.release()

    def release(self) -> Iterator[Request]:
        while self.waiting and not self.budget_full:
            self.in_flight += 1
            yield self.waiting.popleft()

    def reject(self, url: str, page_url: str | None, reason: str, detail: str) -> RejectedItem:
        return RejectedItem(Candidate(url, page_url, self.source_name), reason, detail)

    # -- outcomes -----------------------------------------------------------------

    def parse_image(self, response: Response) -> Iterator[ImageItem]:
        candidate: Candidate = response.meta[CANDIDATE]
        yield ImageItem(
            candidate.matched(self.keywords),
            body=response.body,
            content_type=(response.headers.get("Content-Type") or b"").decode("latin-1"),
            budgeted=response.meta.get(BUDGETED, False),
        )

    def download_failed(self, failure: Failure) -> Iterator[RejectedItem]:
        request = failure.request  # type: ignore[attr-defined]
        candidate: Candidate | None = request.meta.get(CANDIDATE)
        reason, detail = failure_reason(failure)
        self.crawler.stats.inc_value(f"dreamcrawl/failed/{reason}")
        if candidate is None:
            candidate = Candidate(
                original_url(request), request.meta.get("page_url"), self.source_name
            )
        item = RejectedItem(candidate, reason, detail)
        item.budgeted = request.meta.get(BUDGETED, False)
        yield item

    def item_finished(self, item: Any, **_: Any) -> None:
        """An image request ended (kept or not): free its slot in the budget."""
        if not getattr(item, "budgeted", False):
            return
        self.in_flight -= 1
        if getattr(item, "outcome", None) is OutcomeKind.IMAGE:
            self.kept += 1
        if not self.max_images:
            return
        for request in self.release():
            self.crawler.engine.crawl(request)

    def idle(self) -> None:
        if self.waiting and not self.budget_full:
            for request in self.release():
                self.crawler.engine.crawl(request)
            raise DontCloseSpider
        if self.waiting:
            self.not_considered += len(self.waiting)
            self.crawler.stats.set_value("dreamcrawl/not_considered", self.not_considered)
            self.waiting.clear()
