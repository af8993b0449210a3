"""Retrying catalog writes through a short outage, and telling an outage from a bad row.

A catalog write can fail for two kinds of reasons. The row itself may be bad (a
constraint, a value the database refuses): that is the URL's own failure, recorded as
an ``error`` rejection. Or the catalog may be out of reach (the connection lost, the
server restarting, its disk full): that is nobody's fault, and no URL may be blamed or
dropped for it. Those are retried with a growing pause for a bounded time
(``DREAMCRAWL_WRITE_RETRY_SECONDS``); if the catalog is still out of reach after it,
:class:`~storage.errors.CatalogUnavailable` stops the crawl, which ends ``interrupted``
and is finished by ``dreamcrawl crawl --resume`` (docs/crawler.md, "When something
fails mid-run").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from storage.db import driver_message
from storage.errors import CatalogUnavailable

log = logging.getLogger("dreamcrawl.crawler.write_retry")

T = TypeVar("T")
# The crawl's default, DREAMCRAWL_WRITE_RETRY_SECONDS: a PostgreSQL restart or failover
# takes a few seconds; a full disk is not fixed in this time, and the crawl stops.
RETRY_SECONDS = 30.0
FIRST_PAUSE_S = 0.1
LONGEST_PAUSE_S = 2.0


def unavailable(exc: BaseException) -> bool:
    """True if ``exc`` says the catalog is out of reach, rather than that a row is bad."""
    if isinstance(exc, CatalogUnavailable | OSError):
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True  # connection lost or refused, server shutting down, disk full, locked
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def with_retries(action: Callable[[], T], *, seconds: float, what: str) -> T:
    """``action()``, retried while the catalog is out of reach, for up to ``seconds``.

    ``action`` must be a whole transaction (it is run again from the start). Any other
    error passes through at once; an outage longer than ``seconds`` raises
    :class:`CatalogUnavailable` naming ``what`` could not be written.
    """
    deadline = time.monotonic() + seconds
    pause = FIRST_PAUSE_S
    attempts = 0
    while True:
        try:
            return action()
        except Exception as exc:
            if not unavailable(exc):
                raise
            if isinstance(exc, CatalogUnavailable):
                raise  # an inner write already gave up
            attempts += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise CatalogUnavailable(
                    f"the catalog could not be written ({what}) after {attempts} "
                    f"attempt(s) over {seconds:g} s: {_first_line(exc)}"
                ) from exc
            if attempts == 1:
                log.warning("the catalog is out of reach (%s); retrying %s for up to %g s",
                            _first_line(exc), what, seconds)  # fmt: skip
            time.sleep(min(pause, left))  # backoff between attempts, not a timing guess
            pause = min(pause * 2, LONGEST_PAUSE_S)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {driver_message(exc)}".rstrip(": ")
