"""Write validated images and rejections to the catalog, one transaction per URL.

:class:`CatalogWriter` is shared by the crawl pipelines and ``dreamcrawl import``:

- an exact duplicate (same sha256) becomes another sighting of the same image, flagged
  ``duplicate``;
- a perceptual near-duplicate (pHash within DREAMCRAWL_NEAR_DUPLICATE_DISTANCE bits) is
  kept and flagged, or rejected, as configured;
- the blob is written first, then the rows commit together. A blob whose rows never
  committed (the process was killed in between) is listed in the run's journal and
  removed when the run resumes, so a killed crawl leaves no orphan behind.

Writes are idempotent per (crawl run, URL): replaying a URL after a crash is a no-op.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crawler import reasons
from crawler.validate import Limits, Rejected, inspect_image
from storage.blobs import BlobStore
from storage.db import Catalog
from storage.models import Image, Rejection, Sighting, utcnow
from storage.records import ImageFacts, upsert_image

KEEP = "keep"
SKIP = "skip"
JOURNAL = "blobs.journal"


def _insert(session: Session, table: Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class RunBlobStore(BlobStore):
    """The catalog's blob store, with temporary files in the run's own folder.

    A killed writer's half-written file then belongs to its run, which removes it when
    it resumes; files are linked into ``objects/`` exactly as usual.
    """

    def __init__(self, root: Path, run_dir: Path) -> None:
        super().__init__(root)
        self._tmp = run_dir / "tmp"

    @property
    def tmp_dir(self) -> Path:
        return self._tmp


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


@dataclass
class Candidate:
    """Where an image was found and why it matched."""

    url: str
    page_url: str | None
    source: str
    keywords: list[str] = field(default_factory=list)
    matches: list[dict[str, str]] = field(default_factory=list)
    relevance: float = 0.0
    licence: str | None = None
    attribution: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one URL: ``image`` (new), ``duplicate``, ``near-duplicate`` or
    ``rejected`` (with its reason)."""

    kind: str
    reason: str | None = None
    image_id: int | None = None


class CatalogWriter:
    """Turns candidates into catalog rows for one crawl run."""

    def __init__(
        self,
        catalog: Catalog,
        run_id: int,
        limits: Limits,
        *,
        near_duplicate_distance: int = 6,
        near_duplicates: str = KEEP,
    ) -> None:
        if near_duplicates not in (KEEP, SKIP):
            raise ValueError(f"near_duplicates must be 'keep' or 'skip', not {near_duplicates!r}")
        self.catalog = catalog
        self.run_id = run_id
        self.limits = limits
        self.near_duplicate_distance = near_duplicate_distance
        self.near_duplicates = near_duplicates
        self.run_dir = catalog.settings.runs_dir / str(run_id)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.blobs = RunBlobStore(catalog.blobs.root, self.run_dir)
        self.index = PhashIndex()
        self._journal_lock = threading.Lock()
        self._journal = open(self.run_dir / JOURNAL, "a")  # noqa: SIM115 (closed in close())
        with catalog.session() as session:
            self.index.load(session)

    def close(self) -> None:
        """Close the journal and sweep: a finished writer leaves no scratch or orphan."""
        self._journal.close()
        recover_run(self.catalog, self.run_id)

    # -- writing ------------------------------------------------------------------

    def record_rejection(
        self, url: str, page_url: str | None, reason: str, detail: str | None = None
    ) -> bool:
        """Insert a rejection row; False if this run already recorded the URL."""
        with self.catalog.session() as session:
            return self._reject(session, url, page_url, reason, detail)

    def _reject(
        self, session: Session, url: str, page_url: str | None, reason: str, detail: str | None
    ) -> bool:
        stmt = (
            _insert(session, Rejection.__table__)
            .values(
                crawl_run_id=self.run_id,
                url=url,
                page_url=page_url,
                reason=reason,
                detail=(detail or "")[:2000] or None,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["crawl_run_id", "url"])
        )
        return bool(session.execute(stmt).rowcount)

    def record_image(self, candidate: Candidate, source: bytes | Path) -> Outcome:
        """Validate ``source`` and write the image, its sighting, or a rejection."""
        try:
            facts = inspect_image(source, self.limits)
        except Rejected as rejected:
            self.record_rejection(
                candidate.url, candidate.page_url, rejected.reason, rejected.detail
            )
            return Outcome("rejected", rejected.reason)
        try:
            return self._write(candidate, source, facts)
        except Rejected as rejected:
            self.record_rejection(
                candidate.url, candidate.page_url, rejected.reason, rejected.detail
            )
            return Outcome("rejected", rejected.reason)

    def _write(self, candidate: Candidate, source: bytes | Path, facts: ImageFacts) -> Outcome:
        known = self.catalog.blobs.exists(facts.sha256)  # an exact duplicate, most likely
        near, token = None, None
        if not known and facts.phash is not None and self.near_duplicate_distance >= 0:
            near, token = self.index.claim(facts.phash, self.near_duplicate_distance)
        image_id = None
        try:
            if near is not None and self.near_duplicates == SKIP:
                detail = f"perceptually close to image #{near}"
                self.record_rejection(
                    candidate.url, candidate.page_url, reasons.NEAR_DUPLICATE, detail
                )
                return Outcome("rejected", reasons.NEAR_DUPLICATE, image_id=near)
            if not known:
                # Outside the transaction: the fsyncs of several writers overlap, and
                # SQLite's single write lock is held only for the rows.
                self._store_blob(facts, source)
            with self.catalog.session() as session:
                image_id, created = upsert_image(session, facts, near_duplicate_of_id=near)
                near = near if created else None
                self._sight(
                    session, image_id, candidate, duplicate=not created,
                    near_duplicate=near is not None,
                )  # fmt: skip
            if created and facts.phash and token is None:
                self.index.add(image_id, facts.phash)
        finally:
            self.index.settle(token, image_id)
        if not created:
            return Outcome("duplicate", image_id=image_id)
        return Outcome("near-duplicate" if near is not None else "image", image_id=image_id)

    def _store_blob(self, facts: ImageFacts, source: bytes | Path) -> None:
        with self._journal_lock:
            self._journal.write(facts.sha256 + "\n")
            self._journal.flush()
        key = (
            self.blobs.put_file(source)
            if isinstance(source, Path)
            else self.blobs.put_bytes(source)
        )
        if key != facts.sha256:  # the file changed between validation and copy
            raise Rejected(reasons.ERROR, "file changed while it was being imported")

    def _sight(
        self,
        session: Session,
        image_id: int,
        candidate: Candidate,
        *,
        duplicate: bool,
        near_duplicate: bool = False,
    ) -> None:
        values: dict[str, Any] = {
            "image_id": image_id,
            "crawl_run_id": self.run_id,
            "url": candidate.url,
            "page_url": candidate.page_url,
            "source": candidate.source,
            "keywords": candidate.keywords,
            "matches": candidate.matches,
            "relevance": candidate.relevance,
            "duplicate": duplicate,
            "near_duplicate": near_duplicate,
            "licence": candidate.licence,
            "attribution": candidate.attribution,
            "fetched_at": utcnow(),
        }
        stmt = (
            _insert(session, Sighting.__table__)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["crawl_run_id", "url"])
        )
        session.execute(stmt)


# -- a run as a whole ---------------------------------------------------------------


def done_urls(catalog: Catalog, run_id: int) -> set[str]:
    """URLs the run already ended (sighting or rejection): skipped when it resumes."""
    with catalog.session() as session:
        seen = set(session.scalars(select(Sighting.url).where(Sighting.crawl_run_id == run_id)))
        seen.update(session.scalars(select(Rejection.url).where(Rejection.crawl_run_id == run_id)))
    return seen


def count_new_images(catalog: Catalog, run_id: int) -> int:
    """Sightings of the run that are not exact duplicates (what --max-images counts)."""
    with catalog.session() as session:
        stmt = select(func.count()).where(
            Sighting.crawl_run_id == run_id, Sighting.duplicate.is_(False)
        )
        return int(session.execute(stmt).scalar_one())


def recover_run(catalog: Catalog, run_id: int) -> list[str]:
    """Undo what a killed writer of the run left behind; return the blobs removed.

    Its temporary files go, and so does every blob in its journal that no image row
    refers to (written, but its rows never committed).
    """
    run_dir = catalog.settings.runs_dir / str(run_id)
    shutil.rmtree(run_dir / "tmp", ignore_errors=True)
    journal = run_dir / JOURNAL
    keys = set(journal.read_text().split()) if journal.exists() else set()
    removed: list[str] = []
    if keys:
        with catalog.session() as session:
            stmt = select(Image.blob_key).where(Image.blob_key.in_(keys))
            known = set(session.scalars(stmt))
        for key in sorted(keys - known):
            if catalog.blobs.exists(key):
                catalog.blobs.delete(key)
                removed.append(key)
    with contextlib.suppress(FileNotFoundError):
        journal.unlink()
    return removed


def run_counts(catalog: Catalog, run_id: int) -> dict[str, Any]:
    """What the run's rows say: sightings by kind and rejections by reason."""
    with catalog.session() as session:
        rows = session.execute(
            select(Sighting.duplicate, Sighting.near_duplicate, func.count())
            .where(Sighting.crawl_run_id == run_id)
            .group_by(Sighting.duplicate, Sighting.near_duplicate)
        ).all()
        rejected = dict(
            session.execute(
                select(Rejection.reason, func.count())
                .where(Rejection.crawl_run_id == run_id)
                .group_by(Rejection.reason)
            ).all()
        )
    sightings = sum(n for _, _, n in rows)
    duplicates = sum(n for dup, _, n in rows if dup)
    near = sum(n for dup, near, n in rows if near and not dup)
    return {
        "sightings": sightings,
        "new_images": sightings - duplicates,
        "duplicates": duplicates,
        "near_duplicates": near,
        "rejections": sum(rejected.values()),
        "rejected": dict(sorted(rejected.items())),
    }
