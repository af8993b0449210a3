"""Downloader middlewares that keep a crawl polite and inside its fence.

Each refusal raises :class:`crawler.reasons.Refused`, an ``IgnoreRequest`` carrying the
rejection reason, so the request's errback records it instead of Scrapy dropping it
silently (Scrapy's own offsite filter is replaced for that reason).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler import reasons

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class Refused(IgnoreRequest):
    """A request our middlewares refuse, carrying the rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


ALLOWED_SCHEMES = frozenset({"http", "https"})
# Directives that are not a user agent name when they start an X-Robots-Tag value.
_DIRECTIVE_PREFIXES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)
_UA_PREFIX = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*:\s*(.*)$")
REFUSING_DIRECTIVES = frozenset({"noindex", "none", "noimageai", "noai"})


def host_allowed(host: str | None, domains: list[str]) -> bool:
    """True if ``host`` is one of ``domains`` or a subdomain of one."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


@lru_cache(maxsize=4096)
def _resolves_to_private(host: str) -> bool:
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            return False  # the download will fail with its own, clearer error
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    return any(
        a.is_private
        or a.is_loopback
        or a.is_link_local
        or a.is_reserved
        or a.is_multicast
        or a.is_unspecified
        for a in addresses
    )


class GuardMiddleware:
    """Refuse non-HTTP schemes, hosts outside the crawl's domains, and private addresses.

    Domains come from the spider's ``allowed_domains``; loopback and private addresses are
    refused unless ``DREAMCRAWL_ALLOW_PRIVATE`` is set (``--allow-private``).
    """

    def __init__(self, crawler: Crawler, allow_private: bool) -> None:
        self.crawler = crawler
        self.allow_private = allow_private

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GuardMiddleware:
        return cls(crawler, crawler.settings.getbool("DREAMCRAWL_ALLOW_PRIVATE"))

    def process_request(self, request: Request) -> None:
        refusal = self.refusal(request.url, urlparse_cached(request).scheme, request)
        if refusal:
            raise refusal

    def refusal(self, url: str, scheme: str, request: Request) -> Refused | None:
        if scheme not in ALLOWED_SCHEMES:
            return Refused(reasons.UNSUPPORTED_SCHEME, f"only http and https are fetched: {url}")
        host = urlparse_cached(request).hostname
        spider = self.crawler.spider
        domains = list(getattr(spider, "allowed_domains", None) or [])
        if domains and not host_allowed(host, domains):
            return Refused(reasons.OFF_DOMAIN, f"{host} is outside {', '.join(domains)}")
        if not self.allow_private and host and _resolves_to_private(host):
            return Refused(
                reasons.PRIVATE_ADDRESS,
                f"{host} is a private or loopback address (use --allow-private)",
            )
        return None


class XRobotsTagMiddleware:
    """Honour ``X-Robots-Tag: noindex / none / noimageai / noai`` meant for us or for all."""

    def __init__(self, user_agent: str) -> None:
        self.agent = user_agent.split("/")[0].lower()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> XRobotsTagMiddleware:
        return cls(crawler.settings.get("USER_AGENT", "dreamcrawl"))

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status != 200:
            return response
        refusing = self.refusing_directives(response.headers.getlist("X-Robots-Tag"))
        if refusing:
            raise Refused(reasons.X_ROBOTS_TAG, f"X-Robots-Tag: {', '.join(sorted(refusing))}")
        return response

    def refusing_directives(self, values: list[bytes]) -> set[str]:
        found: set[str] = set()
        for raw in values:
            value = raw.decode("latin-1").strip()
            match = _UA_PREFIX.match(value)
            if match and match.group(1).lower() not in _DIRECTIVE_PREFIXES:
                if match.group(1).lower() not in (self.agent, "*"):
                    continue
                value = match.group(2)
            tokens = {token.strip().lower() for token in value.split(",")}
            found |= tokens & REFUSING_DIRECTIVES
        return found


class GuardedRedirectMiddleware(RedirectMiddleware):
    """Scrapy's redirects, refusing loops, too long chains and jumps out of the fence."""

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if redirected.url in chain:
            raise Refused(reasons.REDIRECT_LOOP, " -> ".join([*chain, redirected.url]))
        if len(chain) > self.max_redirect_times:
            raise Refused(
                reasons.TOO_MANY_REDIRECTS,
                f"more than {self.max_redirect_times} redirects from {chain[0]}",
            )
        guard = self.crawler.get_downloader_middleware(GuardMiddleware)
        if guard is not None:
            refusal = guard.refusal(redirected.url, urlparse_cached(redirected).scheme, redirected)
            if refusal:
                refusal.detail = f"redirected to {redirected.url}: {refusal.detail}"
                raise refusal
        return super()._redirect(redirected, request, reason)
