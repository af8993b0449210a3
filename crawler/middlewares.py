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
    """True if ``host`` is one of ``domains`` or a subdomain of one (a trailing dot, the
    fully qualified spelling, names the same host on either side)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    fence = [d.lower().rstrip(".") for d in domains]
    return any(host == d or host.endswith("." + d) for d in fence if d)


# Ranges refused although Python's ipaddress calls some of them global: 6to4 (2002::/16)
# and Teredo (2001::/32) tunnel to an embedded IPv4 address, NAT64 (64:ff9b::/96) too.
TUNNELS = tuple(ipaddress.ip_network(n) for n in ("2002::/16", "2001::/32", "64:ff9b::/96"))


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable and not a tunnel to somewhere else (fail closed: anything
    ``ipaddress`` does not call global is refused, carrier-grade NAT 100.64.0.0/10 and the
    documentation and benchmarking ranges included)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _public(address.ipv4_mapped)
        if any(address in net for net in TUNNELS):
            return False
    return address.is_global and not address.is_multicast


@lru_cache(maxsize=4096)
def address_refusal(host: str) -> tuple[str, str] | None:
    """``(reason, detail)`` if ``host`` must not be fetched, else None.

    Every address the name resolves to must be public; a name that does not resolve is
    refused too (fail closed), as a ``connection`` failure.
    """
    name = host.strip("[]").rstrip(".")
    try:
        addresses = [ipaddress.ip_address(name.split("%")[0])]
    except ValueError:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return reasons.CONNECTION, f"cannot resolve {host}: {exc.strerror or exc}"
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            return reasons.CONNECTION, f"cannot resolve {host}: no address"
    if all(_public(a) for a in addresses):
        return None
    return (
        reasons.PRIVATE_ADDRESS,
        f"{host} is a private, loopback or otherwise non-public address (use --allow-private)",
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
        if not self.allow_private and host:
            refusal = address_refusal(host)
            if refusal:
                return Refused(*refusal)
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
