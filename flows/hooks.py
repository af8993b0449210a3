"""Prefect state hooks: what a cancelled or crashed run owes the catalog.

A dream claims its row with a lease so that a dead worker's images are picked up again,
but only once the lease expires. A run that Prefect *knows* has ended early (cancelled
from the UI, or crashed) hands its rows back at once, so the next run dreams them.
"""

from __future__ import annotations

import logging
from typing import Any

from storage import jobs
from storage.db import open_catalog
from storage.settings import get_settings

log = logging.getLogger("dreamcrawl.flows.hooks")


def release_held_dreams(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` / ``on_crashed``: make the run's running rows pending again.

    Prefect passes ``flow``, ``flow_run`` and ``state`` by name.
    """
    catalog = open_catalog(get_settings())
    with catalog.session() as session:
        released = jobs.release(session, str(flow_run.id))
    log.warning(
        "flow run %s ended %s: %d dream(s) handed back to the queue",
        flow_run.name,
        state.name,
        released,
    )
