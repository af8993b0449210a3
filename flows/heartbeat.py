"""Keep a claimed dream's lease alive while it is being computed.

A claimed row carries a short lease (``storage.jobs.DEFAULT_LEASE``, one minute). A
thread renews it every third of the lease for as long as the dream runs, so a live
worker keeps its row however long the dream takes, and a dead one (killed, crashed,
its machine gone) holds it only until the lease runs out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from storage import jobs
from storage.db import Catalog

log = logging.getLogger("dreamcrawl.flows.heartbeat")


@contextmanager
def keep_leases(catalog: Catalog, claims: dict[int, int], lease: timedelta) -> Iterator[None]:
    """Renew the leases of ``claims`` (row id → its claim's attempt number) until the
    block ends: one thread and one transaction per beat for a whole group of dreams."""
    held = dict(claims)
    stop = threading.Event()

    def beat() -> None:
        while held and not stop.wait(lease.total_seconds() / 3):
            try:
                with catalog.session() as session:
                    lost = [
                        row
                        for row, attempt_no in held.items()
                        if not jobs.renew(session, row, attempt_no, lease)
                    ]
            except Exception as exc:  # a lost connection: try again at the next beat
                log.warning("dreams %s: cannot renew their leases: %s", sorted(held), exc)
                continue
            for row in lost:
                log.warning("dream #%s: the row is no longer this worker's", row)
                del held[row]

    thread = threading.Thread(target=beat, name="dream-leases", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
