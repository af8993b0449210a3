"""Downloader middlewares that keep a crawl polite and inside its fence.

Each refusal raises :class:`crawler.reasons.Refused`, an ``IgnoreRequest`` carrying the
rejection reason, so the request's errback records it instead of Scrapy dropping it
silently (Scrapy's own offsite filter is replaced for that reason).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached

from crawler import reasons
from crawler.resolver import GuardedResolver

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
    """True if ``host`` is one of ``domains`` or a subdomain of one (a trailing dot, the
    fully qualified spelling, names the same host on either side)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    fence = [d.lower().rstrip(".") for d in domains]
    return any(host == d or host.endswith("." + d) for d in fence if d)


class GuardMiddleware:
    """Refuse non-HTTP schemes, hosts outside the crawl's domains, and private addresses.

    Domains come from the spider's ``allowed_domains``. Addresses are judged by the
    reactor's :class:`crawler.resolver.GuardedResolver`, the same object the download
    then connects through, so a refused host gets a rejection row with its reason and an
    allowed one is connected to at the address that was checked (no DNS rebinding).
    Loopback and private addresses are refused unless ``DREAMCRAWL_ALLOW_PRIVATE`` is set
    (``--allow-private``) or they fall in ``DREAMCRAWL_ALLOWED_NETWORKS``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        refusal = self.refusal(request.url, urlparse_cached(request).scheme, request)
        if refusal:
            raise refusal
        host = urlparse_cached(request).hostname
        if not host:
            return
        from twisted.internet import reactor

        resolver = GuardedResolver.installed(reactor, self.crawler.settings)
        answer = await maybe_deferred_to_future(resolver.check(host))
        if answer.refusal:
            reason, detail = answer.refusal
            chain = request.meta.get("redirect_urls")
            if chain:
                detail = f"redirected from {chain[-1]} to {request.url}: {detail}"
            raise Refused(reason, detail)

    def refusal(self, url: str, scheme: str, request: Request) -> Refused | None:
        """The refusal a URL earns before any lookup: its scheme or its domain."""
        if scheme not in ALLOWED_SCHEMES:
            return Refused(reasons.UNSUPPORTED_SCHEME, f"only http and https are fetched: {url}")
        host = urlparse_cached(request).hostname
        spider = self.crawler.spider
        domains = list(getattr(spider, "allowed_domains", None) or [])
        if domains and not host_allowed(host, domains):
            return Refused(reasons.OFF_DOMAIN, f"{host} is outside {', '.join(domains)}")
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
    """Scrapy's redirects, refusing loops, too long chains and jumps out of the fence.

    The target's scheme and domain are checked here; its address when the redirected
    request passes :class:`GuardMiddleware` on its way to the downloader, like any other.
    """

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
