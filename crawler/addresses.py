"""Which addresses a crawl may connect to: the one policy for every address check.

The guard middleware asks it for a clear rejection reason, and the resolver that the
reactor connects through (:mod:`crawler.resolver`) applies it to the very addresses
it hands to the connection, so the address checked is the address connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crawler import reasons

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges refused although Python's ipaddress calls some of them global: 6to4 (2002::/16)
# and Teredo (2001::/32) tunnel to an embedded IPv4 address, NAT64 (64:ff9b::/96) too.
TUNNELS = tuple(ipaddress.ip_network(n) for n in ("2002::/16", "2001::/32", "64:ff9b::/96"))


def public(address: IPAddress) -> bool:
    """Globally routable and not a tunnel to somewhere else (fail closed: anything
    ``ipaddress`` does not call global is refused, carrier-grade NAT 100.64.0.0/10 and the
    documentation and benchmarking ranges included)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public(address.ipv4_mapped)
        if any(address in net for net in TUNNELS):
            return False
    return address.is_global and not address.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells (``[::1]``, ``fe80::1%eth0``, ``127.0.0.1``), or None
    for a name that must be resolved."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``DREAMCRAWL_ALLOWED_NETWORKS``: CIDR networks (``10.1.0.0/16``, ``fd00::/8``)."""
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())
    except ValueError as exc:
        raise ValueError(f"DREAMCRAWL_ALLOWED_NETWORKS takes CIDR networks: {exc}") from None


def parse_nameservers(values: Iterable[str]) -> list[tuple[str, int]]:
    """``DREAMCRAWL_DNS_SERVERS``: ``IP:port`` pairs (``127.0.0.1:5353``, ``[::1]:53``)."""
    pairs = []
    for value in (v.strip() for v in values if v.strip()):
        host, sep, port = value.rpartition(":")
        host = host.strip("[]")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
            raise ValueError(f"DREAMCRAWL_DNS_SERVERS takes IP:port pairs, got {value!r}")
        if literal_address(host) is None:
            raise ValueError(f"DREAMCRAWL_DNS_SERVERS takes IP addresses, got {value!r}")
        pairs.append((host, int(port)))
    return pairs


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, unless ``allow_private`` (``--allow-private``: anything) or
    the address falls in one of ``allowed_networks`` (``DREAMCRAWL_ALLOWED_NETWORKS``:
    an intranet you mean to crawl, or a test server)."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> AddressPolicy:
        """The policy of a crawl's Scrapy settings."""
        allowed = parse_networks(settings.getlist("DREAMCRAWL_ALLOWED_NETWORKS"))
        return cls(settings.getbool("DREAMCRAWL_ALLOW_PRIVATE"), allowed)

    def allows(self, address: IPAddress) -> bool:
        if self.allow_private or public(address):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allowed_networks)

    def refusal(self, host: str, addresses: Iterable[IPAddress]) -> tuple[str, str] | None:
        """``(reason, detail)`` if ``host``, resolved to ``addresses``, must not be fetched:
        every address must be allowed, and a host with none is refused (fail closed)."""
        found = list(addresses)
        if not found:
            return reasons.CONNECTION, f"cannot resolve {host}: no address"
        refused = [a for a in found if not self.allows(a)]
        if not refused:
            return None
        named = host if literal_address(host) else f"{host} ({', '.join(map(str, refused))})"
        return (
            reasons.PRIVATE_ADDRESS,
            f"{named} is a private, loopback or otherwise non-public address (use --allow-private)",
        )
