"""The search spider: ask keyword search sources for images, then fetch and validate them.

API requests skip robots.txt (an API is meant for programs; Wikimedia's robots.txt
forbids ``/w/`` to crawlers while its API etiquette invites identified clients); the
images themselves are fetched under the usual rules. What a source already says about
a result (MIME type, size) rejects it before any download.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response

from crawler import keywords as kw
from crawler import reasons
from crawler.items import Candidate
from crawler.middlewares import host_allowed
from crawler.sources import SOURCES, SearchResult, SearchSource
from crawler.spiders.base import KeywordSpider, as_list


class SearchSpider(KeywordSpider):
    name = "search"
    required_args = ("keywords", "sources")

    def __init__(self, *args: Any, sources: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_names = as_list(sources)
        self.sources: dict[str, SearchSource] = {}

    @property
    def allowed_domains(self) -> list[str]:  # type: ignore[override]
        domains = set(self.settings.getlist("DREAMCRAWL_ALLOWED_DOMAINS"))
        for source in self.sources.values():
            domains.update(source.allowed_domains())
        return sorted(domains)

    async def start(self) -> Any:
        self.sources = {name: SOURCES[name](self.settings) for name in self.source_names}
        limit = self.settings.getint("DREAMCRAWL_SEARCH_LIMIT")
        for source in self.sources.values():
            for keyword in self.keywords:
                yield self.api_request(source, keyword, limit, None)

    def api_request(self, source: SearchSource, keyword: str, left: int, cursor: Any) -> Request:
        return Request(
            source.search_url(keyword, left, cursor),
            callback=self.parse_results,
            errback=self.download_failed,
            dont_filter=True,
            headers={"Accept": "application/json"},
            meta={
                "dont_obey_robotstxt": True,
                "source": source.name,
                "keyword": keyword,
                "left": left,
            },
        )

    def parse_results(self, response: Response) -> Iterator[Any]:
        source = self.sources[response.meta["source"]]
        keyword, left = response.meta["keyword"], response.meta["left"]
        try:
            results, cursor = source.parse(json.loads(response.body))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            yield self.reject(response.url, None, reasons.ERROR, f"bad {source.name} answer: {exc}")
            return
        self.crawler.stats.inc_value(f"dreamcrawl/search/{source.name}/results", len(results))
        for result in results[:left]:
            yield from self.consider(source, keyword, result)
        left -= len(results)
        if cursor and left > 0 and results:
            yield self.api_request(source, keyword, left, cursor)

    def consider(self, source: SearchSource, keyword: str, result: SearchResult) -> Iterator[Any]:
        if not self.first_time(result.url):
            return
        refusal = self.refusal(result)
        if refusal:
            yield self.reject(result.url, result.page_url, *refusal)
            return
        matches, _ = kw.match(self.keywords, result.texts)
        if not any(m["keyword"] == keyword for m in matches):
            matches.insert(0, {"keyword": keyword, "where": "search", "text": result.title})
        found = {m["keyword"] for m in matches}
        relevance = round(len(found) / len(self.keywords), 4) if self.keywords else 1.0
        candidate = Candidate(
            url=result.url,
            page_url=result.page_url,
            source=source.name,
            matches=tuple(matches),
            relevance=relevance,
            licence=result.licence,
            attribution=result.attribution,
        )
        yield from self.image_request(candidate)

    def refusal(self, result: SearchResult) -> tuple[str, str] | None:
        """Reject what the source's own metadata rules out, before downloading."""
        mime = (result.mime or "").lower()
        if mime == "image/svg+xml":
            return reasons.UNSUPPORTED_FORMAT, "SVG (vector) images are not kept"
        if mime and not mime.startswith("image/"):
            return reasons.NOT_IMAGE, f"the source says it is {mime}"
        min_w = self.settings.getint("DREAMCRAWL_MIN_WIDTH")
        min_h = self.settings.getint("DREAMCRAWL_MIN_HEIGHT")
        if result.width and result.height and (result.width < min_w or result.height < min_h):
            return reasons.TOO_SMALL, f"{result.width}x{result.height} is below {min_w}x{min_h}"
        maxsize = self.settings.getint("DOWNLOAD_MAXSIZE")
        if result.size and maxsize and result.size > maxsize:
            return reasons.TOO_LARGE, f"{result.size} bytes > {maxsize}"
        host = urlsplit(result.url).hostname
        if not host_allowed(host, self.allowed_domains):
            return reasons.OFF_DOMAIN, f"{host} is outside {', '.join(self.allowed_domains)}"
        return None
