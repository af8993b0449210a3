"""A real DNS server on 127.0.0.1 (UDP, a free port) whose answers change per query.

Enough of RFC 1035 for a resolver's A and AAAA questions: each name has a script of
answers, one per query, the last repeated (``["127.0.0.2", "127.0.0.1"]`` is a
rebinding attacker: an allowed address first, loopback from then on), with TTL 0 as
rebinding attackers use. Unknown names get NXDOMAIN, AAAA questions no records. Every
question is recorded in ``queries``.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

A, AAAA = 1, 28


class RebindingDNS:
    """Answers scripted per name; ``port`` once served."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = {name.lower(): list(answers) for name, answers in script.items()}
        self.queries: list[tuple[str, int]] = []
        self.port = 0
        self.lock = threading.Lock()

    def a_queries(self, name: str) -> int:
        with self.lock:
            return sum(1 for q in self.queries if q == (name.lower(), A))

    def answer(self, packet: bytes) -> bytes:
        query_id, _flags, _qdcount = struct.unpack("!HHH", packet[:6])
        labels, offset = [], 12
        while packet[offset]:
            length = packet[offset]
            labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii").lower())
            offset += 1 + length
        qtype, _qclass = struct.unpack("!HH", packet[offset + 1 : offset + 5])
        question = packet[12 : offset + 5]
        name = ".".join(labels)
        with self.lock:
            self.queries.append((name, qtype))
            answers = self.script.get(name)
            addresses: list[str] = []
            if answers is not None and qtype == A:
                addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        rcode = 3 if answers is None else 0  # NXDOMAIN
        header = struct.pack("!HHHHHH", query_id, 0x8180 | rcode, 1, len(addresses), 0, 0)
        records = b"".join(
            struct.pack("!HHHIH", 0xC00C, A, 1, 0, 4) + ipaddress.IPv4Address(a).packed
            for a in addresses
        )
        return header + question + records


@contextmanager
def serve_dns(server: RebindingDNS) -> Iterator[RebindingDNS]:
    """Answer on 127.0.0.1 (a free UDP port) for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    server.port = sock.getsockname()[1]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                packet, peer = sock.recvfrom(512)
            except OSError:
                return
            if packet == b"stop":
                return
            try:
                sock.sendto(server.answer(packet), peer)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue  # not a question this server understands

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        sock.sendto(b"stop", ("127.0.0.1", server.port))
        thread.join(timeout=5)
        sock.close()
