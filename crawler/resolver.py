"""The crawl's name resolver: resolve each host once, check it, connect only there.

Checking an address and then letting the HTTP client resolve the name again leaves a
window for DNS rebinding: a hostile name answers a public address to the check and
``127.0.0.1`` (or ``169.254.169.254``) a moment later to the connection. Scrapy's
downloader connects through the reactor's name resolver (Twisted's ``HostnameEndpoint``
asks ``reactor.nameResolver``; ``connectTCP`` by name asks ``reactor.resolver``, which
installing an ``IHostnameResolver`` also replaces). :class:`GuardedResolver` is that
resolver (the ``TWISTED_DNS_RESOLVER`` setting): it looks a name up once per crawl
process, keeps the addresses, judges every one with
:class:`crawler.addresses.AddressPolicy`, and hands the connection only addresses it
allowed. The guard middleware asks the same object, so the rejection row names the
reason and the connection goes to the address that was checked. Nothing else in the
crawler resolves names: every fetch (start URLs, links, images, redirects, robots.txt,
search APIs) is a Scrapy request, and the crawler drives no browser.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from zope.interface import implementer

from crawler import reasons
from crawler.addresses import AddressPolicy, IPAddress, literal_address, parse_nameservers

logger = logging.getLogger("dreamcrawl.crawler.resolver")
TRUSTED = AddressPolicy(allow_private=True)

Lookup = Callable[[str], "defer.Deferred[list[str]]"]


@dataclass(frozen=True)
class Answer:
    """What a host resolved to and was judged: the allowed addresses, or a refusal."""

    addresses: tuple[IPAddress, ...] = ()
    refusal: tuple[str, str] | None = None


@implementer(IHostResolution)
@dataclass
class _Resolution:
    name: str

    def cancel(self) -> None:
        """Lookups are shared by every request to the host: one is not cancelled."""


def system_lookup(reactor: Any) -> Lookup:
    """The system resolver (``getaddrinfo``: /etc/hosts, then DNS; IPv4 and IPv6), on
    the reactor's thread pool as Twisted's own resolver does it."""

    def lookup(name: str) -> defer.Deferred[list[str]]:
        found = deferToThreadPool(
            reactor,
            reactor.getThreadPool(),
            socket.getaddrinfo,
            name,
            None,
            proto=socket.IPPROTO_TCP,
        )
        return found.addCallback(lambda infos: [info[4][0] for info in infos])

    return lookup


def nameserver_lookup(reactor: Any, servers: Sequence[str]) -> Lookup:
    """A records asked of the given ``host:port`` nameservers (``DREAMCRAWL_DNS_SERVERS``)
    instead of the system resolver: a test's own DNS server, or one you trust."""
    from twisted.names import client, dns

    pairs = parse_nameservers(servers)
    names = client.Resolver(servers=pairs, reactor=reactor)

    def lookup(name: str) -> defer.Deferred[list[str]]:
        found = names.lookupAddress(name)
        return found.addCallback(
            lambda result: [r.payload.dottedQuad() for r in result[0] if r.type == dns.A]
        )

    return lookup


def proxy_hosts(settings: Any) -> frozenset[str]:
    """Hosts of the HTTP proxies the environment names (``http_proxy`` …), which
    Scrapy's ``HttpProxyMiddleware`` sends requests through."""
    if not settings.getbool("HTTPPROXY_ENABLED"):
        return frozenset()
    found = set()
    for url in getproxies().values():
        host = urlsplit(url if "://" in url else f"http://{url}").hostname
        if host:
            found.add(host.lower().rstrip("."))
    return frozenset(found)


@implementer(IHostnameResolver)
class GuardedResolver:
    """One lookup per host for the whole crawl process (see the module doc).

    A name's addresses are kept until the process ends, whatever their DNS TTL, so no
    later lookup can switch a host to another address; every use is judged against
    those same addresses. A failed lookup is not kept: the next request to the host
    asks again. The operator's proxies (:func:`proxy_hosts`) are connected to whatever
    their address; as a URL's host they are judged like any other.
    """

    def __init__(
        self,
        reactor: Any,
        policy: AddressPolicy,
        lookup: Lookup,
        timeout: float,
        proxies: frozenset[str] = frozenset(),
    ) -> None:
        self.reactor = reactor
        self.policy = policy
        self.timeout = timeout
        self.proxies = proxies
        self._lookup = lookup
        self._found: dict[str, tuple[IPAddress, ...]] = {}
        self._waiting: dict[str, list[defer.Deferred[tuple[IPAddress, ...]]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        """Built by Scrapy from the process's settings (``TWISTED_DNS_RESOLVER``)."""
        return cls.from_settings(crawler.settings, reactor)

    @classmethod
    def from_settings(cls, settings: Any, reactor: Any) -> GuardedResolver:
        servers = settings.getlist("DREAMCRAWL_DNS_SERVERS")
        lookup = nameserver_lookup(reactor, servers) if servers else system_lookup(reactor)
        policy = AddressPolicy.from_settings(settings)
        timeout = settings.getfloat("DNS_TIMEOUT")
        return cls(reactor, policy, lookup, timeout, proxy_hosts(settings))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)

    @classmethod
    def installed(cls, reactor: Any, settings: Any) -> GuardedResolver:
        """The reactor's guarded resolver, installed now if another one is there (a
        runner that sets up no resolver, or ``TWISTED_DNS_RESOLVER`` overridden)."""
        current = reactor.nameResolver
        if isinstance(current, cls):
            return current
        logger.warning("installing the guarded resolver in place of %r", current)
        resolver = cls.from_settings(settings, reactor)
        resolver.install_on_reactor()
        return resolver

    def check(self, host: str, policy: AddressPolicy | None = None) -> defer.Deferred[Answer]:
        """``host``'s addresses judged by ``policy`` (the crawl's by default): never an
        error, a lookup failure is a ``connection`` refusal (fail closed)."""
        policy = policy or self.policy
        literal = literal_address(host)
        if literal is not None:
            return defer.succeed(self._judge(host, (literal,), policy))
        found = self._addresses(host.lower().rstrip("."))
        return found.addCallbacks(
            lambda addresses: self._judge(host, addresses, policy),
            lambda failure: self._failed(host, failure),
        )

    def _addresses(self, name: str) -> defer.Deferred[tuple[IPAddress, ...]]:
        """The kept addresses of ``name``, or the one lookup in flight for it."""
        if name in self._found:
            return defer.succeed(self._found[name])
        waiter: defer.Deferred[tuple[IPAddress, ...]] = defer.Deferred()
        waiting = self._waiting.setdefault(name, [])
        waiting.append(waiter)
        if len(waiting) == 1:
            looked_up = self._lookup(name)
            looked_up.addTimeout(self.timeout, self.reactor)
            looked_up.addBoth(self._settle, name)
        return waiter

    def _settle(self, result: list[str] | Failure, name: str) -> None:
        if not isinstance(result, Failure):
            result = tuple(a for a in map(literal_address, result) if a is not None)
            self._found[name] = result
        for waiter in self._waiting.pop(name, []):
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    @staticmethod
    def _judge(host: str, addresses: tuple[IPAddress, ...], policy: AddressPolicy) -> Answer:
        refusal = policy.refusal(host, addresses)
        return Answer(refusal=refusal) if refusal else Answer(addresses=addresses)

    def _failed(self, host: str, failure: Failure) -> Answer:
        if failure.check(defer.TimeoutError):
            why = f"no answer within DNS_TIMEOUT ({self.timeout:g} s)"
        elif isinstance(failure.value, OSError) and failure.value.strerror:
            why = failure.value.strerror
        else:
            why = failure.getErrorMessage() or type(failure.value).__name__
        return Answer(refusal=(reasons.CONNECTION, f"cannot resolve {host}: {why}"))

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """What the connection asks: the checked addresses, or none (the connection then
        fails with a DNS lookup error) for a refused host. A proxy of the environment is
        the one host connected to whatever its address."""
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)

        def deliver(answer: Answer) -> None:
            for address in answer.addresses:
                kind = IPv4Address if address.version == 4 else IPv6Address
                if addressTypes is None or kind in addressTypes:
                    resolutionReceiver.addressResolved(kind("TCP", str(address), portNumber))
            if answer.refusal:
                logger.info("not connecting to %s: %s", hostName, answer.refusal[1])
            resolutionReceiver.resolutionComplete()

        trusted = hostName.lower().rstrip(".") in self.proxies
        self.check(hostName, TRUSTED if trusted else None).addCallback(deliver)
        return resolution
