"""The site spider: follow links inside the allowed domains and collect matching images.

Images come from ``<img src|srcset|data-src>``, ``<picture>``, ``og:image`` and links to
image files. Each is scored against the keywords from its alt text, title, figure
caption, file name, nearby text and the page title (:mod:`crawler.keywords`); images
below ``DREAMCRAWL_MIN_RELEVANCE`` are rejected as ``irrelevant`` without a download.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from parsel import Selector
from scrapy import Request
from scrapy.http import Response, TextResponse

from crawler import keywords as kw
from crawler import reasons
from crawler.items import Candidate, RejectedItem
from crawler.middlewares import ALLOWED_SCHEMES, host_allowed
from crawler.spiders.base import CANDIDATE, KeywordSpider, as_list

IGNORED_SCHEMES = ("data:", "javascript:", "mailto:", "tel:", "about:", "blob:")
DEPTH = "dreamcrawl_depth"


def best_from_srcset(srcset: str) -> str | None:
    """The largest candidate of a ``srcset`` (by its ``w`` or ``x`` descriptor)."""
    best: tuple[float, str] | None = None
    for part in srcset.split(","):
        fields = part.strip().split()
        if not fields:
            continue
        size = 1.0
        if len(fields) > 1 and fields[1][:-1].replace(".", "", 1).isdigit():
            size = float(fields[1][:-1])
        if best is None or size > best[0]:
            best = (size, fields[0])
    return best[1] if best else None


def squash(texts: list[str], limit: int) -> str:
    return " ".join(" ".join(texts).split())[:limit]


class SiteSpider(KeywordSpider):
    name = "site"
    source_name = "site"
    required_args = ("keywords", "start_urls")

    def __init__(
        self,
        *args: Any,
        start_urls: list[str],
        depth: int = 2,
        allowed_domains: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.start_urls = as_list(start_urls)
        self.depth = int(depth)
        hosts = [urlsplit(u).hostname or "" for u in self.start_urls]
        self.allowed_domains = sorted({h.lower() for h in hosts if h} | set(allowed_domains or []))

    @classmethod
    def setting_defaults(cls, settings: Any) -> dict[str, Any]:
        return {
            **super().setting_defaults(settings),
            "depth": settings.getint("DREAMCRAWL_DEPTH"),
            "allowed_domains": settings.getlist("DREAMCRAWL_ALLOWED_DOMAINS"),
        }

    async def start(self) -> Any:
        for url in self.start_urls:
            if self.first_time(url):
                yield self.page_request(url, depth=0, page_url=None, matches=[], relevance=0.0)

    def page_request(
        self, url: str, *, depth: int, page_url: str | None, matches: list[Any], relevance: float
    ) -> Request:
        candidate = Candidate(url, page_url, self.source_name, (), tuple(matches), relevance)
        return Request(
            url,
            callback=self.parse_page,
            errback=self.download_failed,
            dont_filter=True,
            meta={DEPTH: depth, "page_url": page_url, CANDIDATE: candidate},
        )

    # -- pages --------------------------------------------------------------------

    def parse_page(self, response: Response) -> Iterator[Any]:
        if not self._is_html(response):
            # A link that turned out not to be a page: let validation decide what it is.
            yield from self.parse_image(response)
            return
        self.crawler.stats.inc_value("dreamcrawl/pages")
        if self.max_images and self.kept >= self.max_images:
            return
        assert isinstance(response, TextResponse)
        selector = response.selector
        robots = " ".join(selector.xpath("//meta[@name='robots']/@content").getall()).lower()
        page = response.url
        if {"noindex", "none", "noimageai", "noai"} & set(robots.replace(",", " ").split()):
            yield RejectedItem(
                Candidate(page, response.meta.get("page_url"), self.source_name),
                reasons.X_ROBOTS_TAG,
                f'<meta name="robots" content="{robots}">',
            )
            return
        title = squash(selector.xpath("//title//text()").getall(), 300)
        for url, places in self._image_candidates(selector, title):
            yield from self._consider_image(urljoin(page, url), page, places)
        if response.meta.get(DEPTH, 0) >= self.depth or "nofollow" in robots:
            return
        for link in selector.xpath("//a[@href]"):
            href = link.attrib["href"].strip()
            url = urldefrag(urljoin(page, href))[0]
            if href.startswith(IGNORED_SCHEMES) or self._looks_like_image(url):
                continue
            yield from self._consider_page(url, page, link, response.meta.get(DEPTH, 0) + 1)

    def _is_html(self, response: Response) -> bool:
        if not isinstance(response, TextResponse):
            return False
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        if "html" in content_type:
            return True
        head = response.body[:1024].lstrip().lower()
        return head.startswith((b"<!doctype html", b"<html"))

    def _looks_like_image(self, url: str) -> bool:
        path = urlsplit(url).path.lower()
        extensions = self.settings.getlist("DREAMCRAWL_IMAGE_EXTENSIONS")
        return "." in path and path.rsplit(".", 1)[-1] in extensions

    def _nearby(self, node: Selector) -> str:
        """Text around ``node``: its block parent's, or the text right beside it."""
        limit = self.settings.getint("DREAMCRAWL_NEARBY_TEXT_CHARS")
        parent = node.xpath("..")
        tag = parent.xpath("name()").get("").lower()
        if tag and tag not in ("body", "html"):
            text = squash(parent.xpath(".//text()").getall(), limit * 3)
            if len(text) <= limit * 2:
                return text[:limit]
        beside = node.xpath("preceding-sibling::text()[1] | following-sibling::text()[1]")
        return squash(beside.getall(), limit)

    def _image_candidates(
        self, selector: Selector, title: str
    ) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
        for img in selector.xpath("//img"):
            url = img.attrib.get("src") or img.attrib.get("data-src")
            if not url:
                # <picture><source srcset=…><img alt=…></picture>; lxml may nest the img
                # inside the source, so look for sources anywhere in the picture.
                srcset = img.attrib.get("srcset") or img.attrib.get("data-srcset") or ""
                sources = img.xpath("ancestor::picture[1]//source/@srcset").getall()
                url = url or best_from_srcset(" ,".join([srcset, *sources])) or ""
            elif img.attrib.get("srcset"):
                url = best_from_srcset(img.attrib["srcset"]) or url
            if not url:
                continue
            caption = squash(img.xpath("ancestor::figure[1]/figcaption//text()").getall(), 300)
            yield (
                url.strip(),
                [
                    ("alt", img.attrib.get("alt")),
                    ("title", img.attrib.get("title")),
                    ("figcaption", caption),
                    ("filename", kw.filename_text(url)),
                    ("nearby", self._nearby(img)),
                    ("page-title", title),
                ],
            )
        og_text = " ".join(
            selector.xpath(
                "//meta[@property='og:title' or @property='og:description']/@content"
            ).getall()
        )
        for url in selector.xpath("//meta[@property='og:image' or @name='og:image']/@content"):
            value = url.get().strip()
            yield (
                value,
                [
                    ("og", og_text),
                    ("filename", kw.filename_text(value)),
                    ("page-title", title),
                ],
            )
        for link in selector.xpath("//a[@href]"):
            href = link.attrib["href"].strip()
            if self._looks_like_image(href):
                yield (
                    href,
                    [
                        ("link-text", squash(link.xpath(".//text()").getall(), 300)),
                        ("title", link.attrib.get("title")),
                        ("filename", kw.filename_text(href)),
                        ("nearby", self._nearby(link)),
                        ("page-title", title),
                    ],
                )

    def _consider_image(
        self, url: str, page: str, places: list[tuple[str, str | None]]
    ) -> Iterator[Any]:
        url = urldefrag(url)[0]
        if url.startswith(IGNORED_SCHEMES) or not self.first_time(url):
            return
        matches, relevance = kw.match(self.keywords, places)
        refusal = self._refusal(url)
        if refusal:
            yield self.reject(url, page, *refusal)
            return
        if relevance < self.settings.getfloat("DREAMCRAWL_MIN_RELEVANCE"):
            detail = f"no keyword ({', '.join(self.keywords)}) near the image"
            yield self.reject(url, page, reasons.IRRELEVANT, detail)
            return
        candidate = Candidate(url, page, self.source_name, (), tuple(matches), relevance)
        yield from self.image_request(candidate)

    def _consider_page(self, url: str, page: str, link: Selector, depth: int) -> Iterator[Any]:
        if not self.first_time(url):
            return
        refusal = self._refusal(url)
        if refusal:
            yield self.reject(url, page, *refusal)
            return
        text = squash(link.xpath(".//text()").getall(), 300)
        matches, relevance = kw.match(self.keywords, [("link-text", text)])
        yield self.page_request(
            url, depth=depth, page_url=page, matches=matches, relevance=relevance
        )

    def _refusal(self, url: str) -> tuple[str, str] | None:
        parts = urlsplit(url)
        if parts.scheme not in ALLOWED_SCHEMES:
            return reasons.UNSUPPORTED_SCHEME, f"only http and https are fetched: {url[:200]}"
        if not host_allowed(parts.hostname, self.allowed_domains):
            return (
                reasons.OFF_DOMAIN,
                f"{parts.hostname} is outside {', '.join(self.allowed_domains)}",
            )
        return None
