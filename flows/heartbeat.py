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
def keep_lease(
    catalog: Catalog, stylization_id: int, attempt_no: int, lease: timedelta
) -> Iterator[None]:
    """Renew the lease of claim ``attempt_no`` on the row until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                with catalog.session() as session:
                    mine = jobs.renew(session, stylization_id, attempt_no, lease)
            except Exception as exc:  # a lost connection: try again at the next beat
                log.warning("dream #%s: cannot renew its lease: %s", stylization_id, exc)
                continue
            if not mine:
                log.warning("dream #%s: the row is no longer this worker's", stylization_id)
                return

    thread = threading.Thread(target=beat, name=f"lease-{stylization_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
