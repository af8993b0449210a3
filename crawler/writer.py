"""Write validated images and rejections to the catalog, each URL all-or-nothing.

:class:`CatalogWriter` is shared by the crawl pipelines and ``dreamcrawl import``:

- an exact duplicate (same sha256) becomes another sighting of the same image, flagged
  ``duplicate``;
- a perceptual near-duplicate (pHash within DREAMCRAWL_NEAR_DUPLICATE_DISTANCE bits) is
  kept and flagged, or rejected, as configured;
- the blob is written first (file and folder entry durable), then the URL's rows commit
  together, in a transaction that may also hold other URLs' complete rows (one writer
  thread commits what has queued up; see :class:`CatalogWriter`). A blob whose rows
  never committed (the process was killed in between) is listed in the run's journal
  and removed when the run resumes, so a killed crawl leaves no orphan behind.
- a catalog that is out of reach (connection lost, disk full) is retried for a bounded
  time (crawler.write_retry); after that, or when the blob store cannot be written,
  :class:`~storage.errors.StoreUnavailable` fails the URL without recording anything
  for it, so that a resumed run fetches it again.

Writes are idempotent per (crawl run, URL): replaying a URL after a crash is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from crawler import reasons
from crawler.batches import take_batch
from crawler.items import Candidate, OutcomeKind
from crawler.near_duplicates import PhashIndex
from crawler.run_state import JOURNAL, recover_run, run_dir
from crawler.validate import Limits, Rejected, inspect_image
from crawler.write_retry import RETRY_SECONDS, unavailable, with_retries
from storage.db import Catalog
from storage.errors import BlobStoreUnavailable, CatalogUnavailable
from storage.models import Rejection, Sighting, utcnow
from storage.records import ImageFacts, dialect_insert, upsert_images

if TYPE_CHECKING:
    from crawler.labelling import ContentCheck, LabelWorker

log = logging.getLogger("dreamcrawl.crawler.writer")


class NearDuplicates(StrEnum):
    """What a crawl does with a perceptual near-duplicate of a known image."""

    KEEP = "keep"  # keep it, flagged, pointing at the image it is close to
    SKIP = "skip"  # reject it with the reason ``near-duplicate``


@dataclass(frozen=True)
class Outcome:
    """What became of one URL, and the image it ended as (if any)."""

    kind: OutcomeKind
    reason: str | None = None
    image_id: int | None = None


@dataclass
class Pending:
    """One URL's rows, ready to commit: an image (validated, its blob stored) or a
    rejection. :meth:`CatalogWriter.submit` queues it for the writer thread."""

    candidate: Candidate
    facts: ImageFacts | None = None  # None: a rejection
    near: int | None = None
    token: int | None = None
    reason: str | None = None
    detail: str | None = None
    inserted: bool = False  # a rejection row was new (False: the URL was already ended)
    created: bool = False  # the image row was new (False: an exact duplicate)
    labels: Any = None  # the content check's labels (stylize.labels.Labelling), kept


class CatalogWriter:
    """Turns candidates into catalog rows for one crawl run.

    The work is split in two. :meth:`prepare`, called from any number of threads,
    validates and hashes the bytes and writes a new image's blob (locally: its file
    fsynced, linked into ``objects/``; on S3: one completed PUT). :meth:`submit` hands
    the result to one writer thread, which commits whatever has queued up (up to
    ``MAX_BATCH`` URLs) in one transaction, after one fsync per blob folder of the batch
    (nothing to do on S3, where a completed PUT is durable): a row never commits before
    its blob is durable. Every URL's rows are complete in the batch, so each URL is still
    all-or-nothing; if a batch fails, its URLs are retried one transaction each, so that
    one bad row cannot take the others with it. A batch that fails because the catalog
    is out of reach is retried whole for up to ``retry_seconds``; after that the writer
    gives up: that batch and every later one fail with
    :class:`~storage.errors.CatalogUnavailable`, recording nothing.
    """

    MAX_BATCH = 64

    def __init__(
        self,
        catalog: Catalog,
        run_id: int,
        limits: Limits,
        *,
        near_duplicate_distance: int = 6,
        near_duplicates: NearDuplicates = NearDuplicates.KEEP,
        labels: LabelWorker | None = None,
        content_check: ContentCheck | None = None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.catalog = catalog
        self.retry_seconds = retry_seconds
        self._gave_up: CatalogUnavailable | None = None
        self.labels = labels  # committed images go to it, to be labelled off the path
        self.content_check = content_check
        self.run_id = run_id
        self.limits = limits
        self.near_duplicate_distance = near_duplicate_distance
        self.near_duplicates = NearDuplicates(near_duplicates)
        self.run_dir = run_dir(catalog, run_id)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Temporary files live in the run's own folder: a killed writer's half-written
        # file belongs to its run, which removes it when it resumes.
        self.blobs = catalog.blobs.for_run(self.run_dir / "tmp")
        self.index = PhashIndex()
        self._journal_lock = threading.Lock()
        self._journal = open(self.run_dir / JOURNAL, "a")  # noqa: SIM115 (closed in close())
        with catalog.session() as session:
            self.index.load(session)
        self._queue: queue.SimpleQueue[tuple[Pending, Future[Outcome]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._commit_loop, name="dreamcrawl-catalog-writer", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Commit what is queued, close the journal and sweep: no scratch, no orphan."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        with contextlib.suppress(OSError):  # a line it could not flush was never used
            self._journal.close()
        try:
            recover_run(self.catalog, self.run_id)
        except Exception as exc:
            if not unavailable(exc):
                raise
            # The journal stays: the run's next start removes what it lists.
            log.warning("crawl run %s: leftovers not swept (%s); --resume removes them",
                        self.run_id, exc)  # fmt: skip

    # -- the synchronous interface (``dreamcrawl import``, tests) ---------------------

    def record_rejection(
        self, url: str, page_url: str | None, reason: str, detail: str | None = None
    ) -> bool:
        """Insert a rejection row; False if this run already recorded the URL."""
        pending = self.rejection(Candidate(url, page_url), reason, detail)
        self.submit(pending).result()
        return pending.inserted

    def record_image(self, candidate: Candidate, source: bytes | Path) -> Outcome:
        """Validate ``source`` and write the image, its sighting, or a rejection."""
        return self.queue_image(candidate, source).result()

    def queue_image(self, candidate: Candidate, source: bytes | Path) -> Future[Outcome]:
        """:meth:`prepare` then :meth:`submit`, in the calling thread; the future is the
        outcome once the rows have committed. Once prepared, an image is always queued,
        so its near-duplicate claim is always settled, whoever waits for the result."""
        return self.submit(self.prepare(candidate, source))

    # -- preparing (any thread) ---------------------------------------------------

    @staticmethod
    def rejection(candidate: Candidate, reason: str, detail: str | None = None) -> Pending:
        return Pending(candidate, reason=reason, detail=detail)

    def prepare(self, candidate: Candidate, source: bytes | Path) -> Pending:
        """Validate and hash ``source`` and store its blob if it is new.

        A near-duplicate claim taken here is settled when the rows commit (or fail).
        """
        try:
            facts = inspect_image(source, self.limits)
        except Rejected as rejected:
            return self.rejection(candidate, rejected.reason, rejected.detail)
        labels = None
        if self.content_check is not None:
            labels, mismatch = self.content_check.check(candidate.keywords, _bytes(source))
            if mismatch is not None:
                return self.rejection(candidate, reasons.CONTENT_MISMATCH, mismatch)
        known = self.catalog.blobs.exists(facts.sha256)  # an exact duplicate, most likely
        near, token = None, None
        if not known and facts.phash is not None and self.near_duplicate_distance >= 0:
            near, token = self.index.claim(facts.phash, self.near_duplicate_distance)
        try:
            if near is not None and self.near_duplicates is NearDuplicates.SKIP:
                detail = f"perceptually close to image #{near}"
                pending = self.rejection(candidate, reasons.NEAR_DUPLICATE, detail)
                pending.near, pending.token = near, token
                return pending
            if not known:
                # Outside any transaction: the writers' file fsyncs overlap, and the
                # folder fsync waits for the batch (see the class docstring).
                self._store_blob(facts, source)
        except Rejected as rejected:
            self.index.settle(token, None)
            return self.rejection(candidate, rejected.reason, rejected.detail)
        except BaseException:
            self.index.settle(token, None)
            raise
        return Pending(candidate, facts=facts, near=near, token=token, labels=labels)

    def submit(self, pending: Pending) -> Future[Outcome]:
        """Queue ``pending`` for the writer thread; the future is its outcome once its
        rows have committed (or the exception that stopped them)."""
        future: Future[Outcome] = Future()
        if not self._thread.is_alive():
            self._settle(pending, None)
            future.set_exception(RuntimeError("the catalog writer is closed"))
            return future
        self._queue.put((pending, future))
        return future

    # -- committing (the writer thread) ---------------------------------------------

    def _commit_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = take_batch(self._queue, first, self.MAX_BATCH)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Pending, Future[Outcome]]]) -> None:
        if self._gave_up is not None:
            self._fail(batch, self._gave_up)  # the crawl is stopping: fail fast
            return
        try:
            outcomes = with_retries(
                lambda: self._transaction([pending for pending, _ in batch]),
                seconds=self.retry_seconds,
                what=f"the rows of {len(batch)} URL(s)",
            )
        except CatalogUnavailable as exc:
            log.error("giving up on the catalog: %s", exc)
            self._gave_up = exc
            self._fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) > 1:
                log.warning("a batch of %d catalog writes failed (%s); retrying one by one",
                            len(batch), exc)  # fmt: skip
                for one in batch:
                    self._commit([one])
                return
            self._fail(batch, exc)
            return
        for (pending, future), outcome in zip(batch, outcomes, strict=True):
            self._settle(pending, outcome.image_id if pending.facts is not None else None)
            if self.labels is not None and pending.facts is not None and outcome.image_id:
                self.labels.submit(outcome.image_id, pending.facts.blob_key, pending.labels)
            future.set_result(outcome)

    def _transaction(self, batch: list[Pending]) -> list[Outcome]:
        # Every image of the batch, new or an exact duplicate whose writer may not have
        # committed yet: its folder entry must be durable before our row is.
        self.blobs.sync_dirs(p.facts.sha256 for p in batch if p.facts is not None)
        with self.catalog.session() as session:
            return self._rows(session, batch)

    def _fail(self, batch: list[tuple[Pending, Future[Outcome]]], exc: BaseException) -> None:
        for pending, future in batch:
            self._settle(pending, None)
            future.set_exception(exc)

    def _settle(self, pending: Pending, image_id: int | None) -> None:
        """End the pending URL's near-duplicate claim (and index its new image)."""
        facts = pending.facts
        new = image_id is not None and pending.created
        if new and facts and facts.phash and pending.token is None:
            self.index.add(image_id, facts.phash)  # type: ignore[arg-type]
        self.index.settle(pending.token, image_id)

    def _rows(self, session: Session, batch: list[Pending]) -> list[Outcome]:
        """Write the rows of ``batch`` in ``session``: a few statements for the batch
        (SQLAlchemy compiles ON CONFLICT inserts anew each time, so one per row would
        cost more than the rows themselves)."""
        images = [p for p in batch if p.facts is not None]
        ids, created = self._upsert_images(session, images)
        sightings, outcomes = [], []
        for pending in batch:
            candidate = pending.candidate
            if pending.facts is None:
                assert pending.reason is not None
                outcomes.append(
                    Outcome(OutcomeKind.REJECTED, pending.reason, image_id=pending.near)
                )
                continue
            image_id = ids[pending.facts.sha256]
            pending.created = id(pending) in created
            near = pending.near if pending.created else None
            sightings.append(
                self._sighting(
                    image_id,
                    candidate,
                    duplicate=not pending.created,
                    near_duplicate=near is not None,
                )
            )
            if not pending.created:
                outcomes.append(Outcome(OutcomeKind.DUPLICATE, image_id=image_id))
            else:
                kind = OutcomeKind.NEAR_DUPLICATE if near is not None else OutcomeKind.IMAGE
                outcomes.append(Outcome(kind, image_id=image_id))
        if sightings:
            stmt = dialect_insert(session, Sighting.__table__).on_conflict_do_nothing(
                index_elements=["crawl_run_id", "url"]
            )
            session.execute(stmt, sightings)
        rejections = [p for p in batch if p.facts is None]
        if rejections:
            inserted = self._insert_rejections(session, rejections)
            for pending in rejections:
                pending.inserted = pending.candidate.url in inserted
        return outcomes

    def _upsert_images(
        self, session: Session, images: list[Pending]
    ) -> tuple[dict[str, int], set[int]]:
        """The batch form of :func:`storage.records.upsert_image`: insert each sha256 not
        yet known; return every image's id by sha256, and which pendings (by ``id()``)
        created their row (the first of the batch to bring a new sha256)."""
        rows: dict[str, dict[str, Any]] = {}
        firsts: dict[str, int] = {}
        for pending in images:
            facts = pending.facts
            assert facts is not None
            if facts.sha256 in rows:
                continue
            firsts[facts.sha256] = id(pending)
            rows[facts.sha256] = facts.image_row(pending.near)
        ids, new = upsert_images(session, rows)
        return ids, {firsts[sha] for sha in new}

    def _insert_rejections(self, session: Session, batch: list[Pending]) -> set[str]:
        """Insert the rejection rows of ``batch``; return the URLs that were new."""
        now = utcnow()
        rows = [
            p.candidate.rejection_row(self.run_id, p.reason or "", p.detail, now) for p in batch
        ]
        table = Rejection.__table__
        stmt = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["crawl_run_id", "url"])
            .returning(table.c.url)
        )
        return set(session.scalars(stmt, rows))

    def _store_blob(self, facts: ImageFacts, source: bytes | Path) -> None:
        with self._journal_lock:
            try:
                self._journal.write(facts.sha256 + "\n")
                self._journal.flush()
            except OSError as exc:  # the run's folder is on a full or failing disk
                raise BlobStoreUnavailable(f"cannot write {self._journal.name}: {exc}") from exc
        key = (
            self.blobs.put_file(source, sync_dir=False)
            if isinstance(source, Path)
            else self.blobs.put_bytes(source, sync_dir=False)
        )
        if key != facts.sha256:  # the file changed between validation and copy
            raise Rejected(reasons.ERROR, "file changed while it was being imported")

    def _sighting(
        self, image_id: int, candidate: Candidate, *, duplicate: bool, near_duplicate: bool
    ) -> dict[str, Any]:
        return candidate.sighting_row(
            image_id, self.run_id, duplicate=duplicate, near_duplicate=near_duplicate
        )


def _bytes(source: bytes | Path) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()
