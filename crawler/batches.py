"""Taking work off a queue in batches, for the threads that commit or label in bulk."""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def take_batch(source: queue.SimpleQueue[T | None], first: T, most: int) -> tuple[list[T], bool]:
    """``first`` and whatever else is already queued, up to ``most`` items; the flag is
    True when the stop marker (None) was among them."""
    batch = [first]
    while len(batch) < most:
        try:
            more = source.get_nowait()
        except queue.Empty:
            break
        if more is None:
            return batch, True
        batch.append(more)
    return batch, False
