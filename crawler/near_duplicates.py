"""Near-duplicate lookups: every known image's perceptual hash, in memory.

A crawl compares each new image with every image the catalog knows (8 bytes each, one
vectorized XOR and popcount), so "the same photo, re-encoded" is flagged however many
images the catalog holds.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Image


class PhashIndex:
    """Every known image's pHash in memory, for near-duplicate lookups (8 bytes each).

    Writers run in parallel threads, so a lookup that finds nothing *claims* its hash
    until its image row commits: a second near-identical image arriving meanwhile waits
    for that id instead of slipping past unflagged.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = np.zeros(0, dtype=np.int64)
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._pending_ids: list[int] = []
        self._pending_hashes: list[int] = []
        self._claims: dict[int, tuple[int, Future[int | None]]] = {}
        self._next_claim = 0

    def load(self, session: Session) -> None:
        rows = session.execute(select(Image.id, Image.phash).where(Image.phash.is_not(None)))
        for image_id, phash in rows:
            self.add(image_id, phash)

    def add(self, image_id: int, phash: str) -> None:
        with self._lock:
            self._add(image_id, int(phash, 16))

    def _add(self, image_id: int, value: int) -> None:
        self._pending_ids.append(image_id)
        self._pending_hashes.append(value)

    def nearest(self, phash: str, max_distance: int) -> int | None:
        """The id of the closest known image within ``max_distance`` bits, if any."""
        with self._lock:
            return self._nearest(int(phash, 16), max_distance)

    def _nearest(self, value: int, max_distance: int) -> int | None:
        if self._pending_ids:
            self._ids = np.concatenate([self._ids, np.array(self._pending_ids, np.int64)])
            self._hashes = np.concatenate([self._hashes, np.array(self._pending_hashes, np.uint64)])
            self._pending_ids.clear()
            self._pending_hashes.clear()
        if not len(self._ids):
            return None
        distances = np.bitwise_count(self._hashes ^ np.uint64(value))
        best = int(np.argmin(distances))
        return int(self._ids[best]) if distances[best] <= max_distance else None

    def claim(self, phash: str, max_distance: int) -> tuple[int | None, int | None]:
        """(near image id, None), or (None, claim token) when nothing close is known."""
        value = int(phash, 16)
        while True:
            with self._lock:
                near = self._nearest(value, max_distance)
                if near is not None:
                    return near, None
                waiting = next(
                    (
                        f
                        for v, f in self._claims.values()
                        if (v ^ value).bit_count() <= max_distance
                    ),
                    None,
                )
                if waiting is None:
                    self._next_claim += 1
                    self._claims[self._next_claim] = (value, Future())
                    return None, self._next_claim
            waiting.result()  # its row commits (or fails); then look again

    def settle(self, token: int | None, image_id: int | None) -> None:
        """End a claim: the image row committed as ``image_id`` (None: it did not)."""
        if token is None:
            return
        with self._lock:
            value, future = self._claims.pop(token)
            if image_id is not None:
                self._add(image_id, value)
        future.set_result(image_id)
