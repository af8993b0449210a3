"""The crawl's name resolver: resolve each host once, check it, connect only there.

Checking an address and then letting the HTTP client resolve the name again leaves a
window for DNS rebinding: a hostile name answers a public address to the check and
``127.0.0.1`` (or ``169.254.169.254``) a moment later to the connection. Scrapy's
downloader connects through the reactor's name resolver (Twisted's ``HostnameEndpoint``
asks ``reactor.nameResolver``; ``connectTCP`` by name asks ``reactor.resolver``, which
installing an ``IHostnameResolver`` also replaces). :class:`GuardedResolver` is that
resolver (the ``TWISTED_DNS_RESOLVER`` setting): it looks a name up once per crawl
process, judges every address with :class:`crawler.addresses.AddressPolicy`, keeps the
answer, and hands the connection only addresses it allowed. The guard middleware asks
the same object, so the rejection row names the reason and the connection goes to the
address that was checked. Nothing else in the crawler resolves names.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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
from crawler.addresses import AddressPolicy, IPAddress, literal_address

logger = logging.getLogger("dreamcrawl.crawler.resolver")

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

    pairs = []
    for server in servers:
        host, sep, port = server.strip().rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"DREAMCRAWL_DNS_SERVERS: {server!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    names = client.Resolver(servers=pairs, reactor=reactor)

    def lookup(name: str) -> defer.Deferred[list[str]]:
        found = names.lookupAddress(name)
        return found.addCallback(
            lambda result: [r.payload.dottedQuad() for r in result[0] if r.type == dns.A]
        )

    return lookup


@implementer(IHostnameResolver)
class GuardedResolver:
    """One checked answer per host for the whole crawl process (see the module doc).

    Allowed answers and private-address refusals are kept until the process ends,
    whatever their DNS TTL, so no later lookup can switch a host to another address.
    A failed lookup is not kept: the next request to the host asks again, and is
    judged again.
    """

    def __init__(self, reactor: Any, policy: AddressPolicy, lookup: Lookup, timeout: float):
        self.reactor = reactor
        self.policy = policy
        self.timeout = timeout
        self._lookup = lookup
        self._answers: dict[str, Answer] = {}
        self._waiting: dict[str, list[defer.Deferred[Answer]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        """Built by Scrapy from the process's settings (``TWISTED_DNS_RESOLVER``)."""
        return cls.from_settings(crawler.settings, reactor)

    @classmethod
    def from_settings(cls, settings: Any, reactor: Any) -> GuardedResolver:
        servers = settings.getlist("DREAMCRAWL_DNS_SERVERS")
        lookup = nameserver_lookup(reactor, servers) if servers else system_lookup(reactor)
        policy = AddressPolicy.from_settings(settings)
        return cls(reactor, policy, lookup, settings.getfloat("DNS_TIMEOUT"))

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

    def check(self, host: str) -> defer.Deferred[Answer]:
        """The judged answer for ``host``: looked up at most once while in flight, kept
        once allowed or refused (see the class doc)."""
        literal = literal_address(host)
        if literal is not None:
            return defer.succeed(self._judge(host, [literal]))
        name = host.lower().rstrip(".")
        if name in self._answers:
            return defer.succeed(self._answers[name])
        waiter: defer.Deferred[Answer] = defer.Deferred()
        waiting = self._waiting.setdefault(name, [])
        waiting.append(waiter)
        if len(waiting) == 1:
            found = self._lookup(name)
            found.addTimeout(self.timeout, self.reactor)
            found.addCallbacks(
                lambda ips: self._judge(host, [literal_address(ip) for ip in ips]),
                lambda failure: self._failed(host, failure),
            )
            found.addCallback(self._settle, name)
        return waiter

    def _judge(self, host: str, addresses: list[IPAddress | None]) -> Answer:
        found = tuple(a for a in addresses if a is not None)
        refusal = self.policy.refusal(host, found)
        return Answer(refusal=refusal) if refusal else Answer(addresses=found)

    def _failed(self, host: str, failure: Failure) -> Answer:
        if failure.check(defer.TimeoutError):
            why = f"no answer within DNS_TIMEOUT ({self.timeout:g} s)"
        elif isinstance(failure.value, OSError) and failure.value.strerror:
            why = failure.value.strerror
        else:
            why = failure.getErrorMessage() or type(failure.value).__name__
        return Answer(refusal=(reasons.CONNECTION, f"cannot resolve {host}: {why}"))

    def _settle(self, answer: Answer, name: str) -> None:
        if answer.refusal is None or answer.refusal[0] == reasons.PRIVATE_ADDRESS:
            self._answers[name] = answer
        for waiter in self._waiting.pop(name, []):
            waiter.callback(answer)

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """What the connection asks: the checked addresses, or none (the connection then
        fails with a DNS lookup error) for a refused host."""
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

        self.check(hostName).addCallback(deliver)
        return resolution
