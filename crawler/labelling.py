"""Labels as crawls and imports go, the content check, and labelling the catalog.

- :class:`LabelWorker` labels committed images on a thread of its own, in batches, off
  the crawl's critical path: the writer hands it the images of each commit, it reads
  their blobs, runs the classifier on up to ``BATCH`` at a time and records the labels.
  The TensorFlow graph loads on that thread, so a crawl's first downloads do not wait.
- :class:`ContentCheck` is the ``--content-check`` rule: an image whose text matched a
  keyword must also show it, i.e. one of its top-k labels falls under one of the
  keywords it matched in WordNet (:mod:`stylize.wordnet`). A keyword with no ImageNet
  class under it ("sunset") is accepted on its text alone, and the run says so. The
  check runs where the image is validated (a worker thread) and its labels are kept.
- :func:`label_catalog` labels what is already in the catalog (``dreamcrawl label``, the
  flows' labelling task).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.batches import take_batch
from storage.db import Catalog
from storage.errors import UserError
from storage.labels import LabelOutcome, LabelRow, record, unlabelled
from storage.models import Labelling
from storage.settings import Settings
from stylize.label_weights import FETCH_HINT, LabellerMissing, find_graph, labeller_id

__all__ = ["FETCH_HINT", "ContentCheck", "LabelWorker", "label_catalog", "start_labels"]
from stylize.labels import TOP_K, UNREADABLE, Labeller
from stylize.labels import Labelling as Result
from stylize.wordnet import keyword_classes

log = logging.getLogger("dreamcrawl.crawler.labelling")

BATCH = 32
CONTENT_MISMATCH = "content-mismatch"


def labeller_available(weights_dir: Path) -> bool:
    try:
        find_graph(weights_dir)
    except LabellerMissing:
        return False
    return True


def missing_line(weights_dir: Path) -> str:
    """The one line a crawl prints when it runs without labels."""
    return f"no labeller weights in {weights_dir}: images are not labelled; {FETCH_HINT}"


def truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def check_labeller(
    settings: Settings, *, content_check: bool, overrides: Mapping[str, Any] | None = None
) -> None:
    """Before a crawl starts: a content check without labeller weights is a user error;
    labels without them are off, said in one warning line."""
    if labeller_available(settings.weights_dir):
        return
    if content_check:
        raise UserError(
            f"--content-check needs the labeller's weights and {settings.weights_dir} has "
            f"none; {FETCH_HINT}"
        )
    labels = (overrides or {}).get("DREAMCRAWL_LABELS", True)
    if labels is True or truthy(labels):
        log.warning("%s", missing_line(settings.weights_dir))


def text_only_keywords(keywords: Sequence[str]) -> list[str]:
    """Keywords no ImageNet class falls under: a content check accepts them on text alone."""
    return [k for k in keywords if keyword_classes(k) is None]


def outcome(image_id: int, result: Result) -> LabelOutcome:
    rows = tuple(LabelRow(x.rank, x.wnid, x.name, x.score) for x in result.labels)
    return LabelOutcome(image_id, result.status, rows, result.detail)


def describe(result: Result, k: int = TOP_K) -> str:
    """``tabby 0.62, tiger cat 0.21, …``: a rejection's detail."""
    if not result.labels:
        return f"{result.status}: {result.detail or 'no labels'}"
    return ", ".join(f"{x.name} {x.score:.2f}" for x in result.labels[:k])


@dataclass
class ContentCheck:
    """Does an image show one of the keywords its text matched?"""

    labeller: Labeller
    top_k: int = TOP_K
    counts: Counter[str] = field(default_factory=Counter)

    def check(self, keywords: Sequence[str], data: bytes) -> tuple[Result, str | None]:
        """``(labels, None)`` when it passes, ``(labels, detail)`` when it does not."""
        result = self.labeller.label_bytes([data], top=max(self.top_k, TOP_K))[0]
        covered = [keyword_classes(k) for k in keywords]
        if any(c is None for c in covered) or not keywords:
            self.counts["text-only"] += 1
            return result, None
        top = {label.index for label in result.labels[: self.top_k]}
        if any(top & c for c in covered if c is not None):
            self.counts["passed"] += 1
            return result, None
        self.counts["rejected"] += 1
        wanted = ", ".join(keywords)
        return result, f"no top-{self.top_k} label under {wanted}: {describe(result)}"


class LabelWorker:
    """Labels images on its own thread, in batches, and records them.

    ``load`` builds the labeller (on the worker thread, the first time there is work);
    images already labelled by it are skipped, so duplicates cost one query.
    """

    def __init__(self, catalog: Catalog, load: Callable[[], Labeller], batch: int = BATCH):
        self.catalog = catalog
        self.batch = batch
        self.labeller_id = labeller_id()
        self.counts: Counter[str] = Counter()
        self.error: str | None = None
        self._load = load
        self._labeller: Labeller | None = None
        self._queue: queue.SimpleQueue[tuple[int, str, Result | None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="dreamcrawl-labels", daemon=True)
        self._thread.start()

    def submit(self, image_id: int, blob_key: str, result: Result | None = None) -> None:
        """Label ``image_id`` (``result``: labels the content check already computed)."""
        self._queue.put((image_id, blob_key, result))

    def close(self) -> dict[str, int]:
        """Label what is queued, stop, and return the counts by status."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return dict(self.counts)

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = take_batch(self._queue, first, self.batch)
            try:
                self._label(batch)
            except Exception as exc:  # labels are extra: the crawl goes on without them
                self.error = f"{type(exc).__name__}: {exc}"
                self.counts["failed"] += len(batch)
                log.exception("labelling %d images failed", len(batch))

    def _label(self, batch: list[tuple[int, str, Result | None]]) -> None:
        ids = sorted({image_id for image_id, _, _ in batch})
        with self.catalog.read_session() as session:
            done = set(
                session.scalars(
                    Labelling.__table__.select()
                    .with_only_columns(Labelling.image_id)
                    .where(Labelling.image_id.in_(ids), Labelling.labeller == self.labeller_id)
                )
            )
        todo: dict[int, tuple[str, Result | None]] = {}
        for image_id, key, result in batch:
            if image_id not in done:
                todo.setdefault(image_id, (key, result))
        if not todo:
            return
        results = dict(self._results(todo))
        with self.catalog.session() as session:
            record(session, self.labeller_id, [outcome(i, r) for i, r in results.items()])
        self.counts.update(r.status for r in results.values())

    def _results(self, todo: dict[int, tuple[str, Result | None]]) -> list[tuple[int, Result]]:
        ready = [(i, r) for i, (_, r) in todo.items() if r is not None]
        blobs: list[tuple[int, bytes]] = []
        for image_id, (key, result) in todo.items():
            if result is not None:
                continue
            try:
                blobs.append((image_id, self.catalog.blobs.read_bytes(key)))
            except OSError as exc:
                ready.append((image_id, Result(UNREADABLE, detail=f"blob {key}: {exc}")))
        if blobs:
            if self._labeller is None:
                self._labeller = self._load()
            labelled = self._labeller.label_bytes([data for _, data in blobs])
            ready += [(i, r) for (i, _), r in zip(blobs, labelled, strict=True)]
        return ready


def start_labels(
    catalog: Catalog, *, labels: bool, content_check: bool, top_k: int = TOP_K
) -> tuple[LabelWorker | None, ContentCheck | None]:
    """The label worker and content check a crawl or import asked for, as far as the
    weights allow: without them labels are off (one warning), and a content check is a
    :class:`~stylize.label_weights.LabellerMissing` error."""
    weights_dir = catalog.settings.weights_dir
    if not (labels or content_check):
        return None, None
    if not labeller_available(weights_dir):
        if content_check:
            find_graph(weights_dir)  # raises LabellerMissing with the fetch command
        log.warning("%s", missing_line(weights_dir))
        return None, None
    if not content_check:
        return LabelWorker(catalog, lambda: shared_labeller(weights_dir)), None
    labeller = shared_labeller(weights_dir)
    return LabelWorker(catalog, lambda: labeller), ContentCheck(labeller, top_k=top_k)


_LOADED: dict[Path, Labeller] = {}
_LOADING = threading.Lock()


def shared_labeller(weights_dir: Path) -> Labeller:
    """One labeller per process and weights folder (a crawl may run two spiders)."""
    from stylize.labels import load_labeller

    with _LOADING:
        if weights_dir not in _LOADED:
            _LOADED[weights_dir] = load_labeller(weights_dir)
        return _LOADED[weights_dir]


def label_catalog(
    catalog: Catalog,
    labeller: Labeller,
    *,
    limit: int | None = None,
    batch: int = BATCH,
    crawl_run_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Label the catalog's images that ``labeller`` has not labelled yet, oldest first
    (only those of ``crawl_run_id``, if given)."""
    counts: Counter[str] = Counter()
    after = 0
    while limit is None or counts.total() < limit:
        size = batch if limit is None else min(batch, limit - counts.total())
        with catalog.read_session() as session:
            todo = unlabelled(
                session, labeller.id, limit=size, after_id=after, crawl_run_id=crawl_run_id
            )
        if not todo:
            break
        after = todo[-1][0]
        blobs: list[tuple[int, bytes]] = []
        results: list[LabelOutcome] = []
        for image_id, key in todo:
            try:
                blobs.append((image_id, catalog.blobs.read_bytes(key)))
            except OSError as exc:
                results.append(outcome(image_id, Result(UNREADABLE, detail=f"blob: {exc}")))
        labelled = labeller.label_bytes([data for _, data in blobs])
        results += [outcome(i, r) for (i, _), r in zip(blobs, labelled, strict=True)]
        with catalog.session() as session:
            record(session, labeller.id, results)
        counts.update(r.status for r in results)
        if progress:
            progress(len(results))
    return dict(counts)
