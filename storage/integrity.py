"""``dreamcrawl catalog check``: do the catalog and the blob store agree?

Problems it finds:

- ``missing``: a row names a blob that is not in the store;
- ``corrupt``: a blob's bytes no longer hash to its key;
- ``orphan``: a blob no row refers to (a writer died between blob and row);
- ``stale-temp``: an unfinished write a killed writer left behind: a temporary file in
  ``objects/tmp`` or in a crawl run's ``runs/<id>/tmp``, or an open S3 multipart upload.

It works the same on both blob stores and in bounded memory: the rows are read and
their blobs verified a page at a time (on a few threads, since S3 reads are round
trips), and the store is listed a page at a time, each page's keys looked up in the
catalog.

``repair`` removes orphans and unfinished writes and marks rows whose blob is missing or
corrupt as ``broken`` (it never deletes a row: the lineage stays readable). Objects and
writes younger than ``min_age`` seconds are left alone: a crawler may be between writing a blob and
committing its row, and deleting that blob would break the row it is about to write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from sqlalchemy import select, update

from storage.blobs import StoredObject, Unfinished, unfinished_files
from storage.db import Catalog
from storage.models import Image, ImageStatus, Stylization, StylizationStatus

PAGE = 1000
VERIFY_THREADS = 8
DEFAULT_MIN_AGE = 600.0


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | corrupt | orphan | stale-temp
    table: str | None
    row_id: int | None
    key: str
    detail: str
    modified: float | None = None  # orphans and unfinished writes: when last written
    unfinished: Unfinished | None = None

    def describe(self) -> str:
        where = f"{self.table} #{self.row_id}: " if self.table else ""
        return f"{self.kind}: {where}{self.detail}"


def _batched(items: Iterator[StoredObject], size: int) -> Iterator[list[StoredObject]]:
    while page := list(islice(items, size)):
        yield page


def _referenced(catalog: Catalog) -> Iterator[list[tuple[str, int, str]]]:
    """Pages of (table, row id, blob key) for every row whose blob should be intact
    (rows already marked broken say so themselves)."""
    with catalog.read_session() as session:
        images = select(Image.id, Image.blob_key).where(Image.status != ImageStatus.BROKEN)
        for page in session.execute(images.execution_options(yield_per=PAGE)).partitions():
            yield [("images", row_id, key) for row_id, key in page]
        outputs = select(Stylization.id, Stylization.output_blob_key).where(
            Stylization.output_blob_key.is_not(None),
            Stylization.status != StylizationStatus.BROKEN,
        )
        for page in session.execute(outputs.execution_options(yield_per=PAGE)).partitions():
            yield [("stylizations", row_id, key) for row_id, key in page]


def _known(catalog: Catalog, keys: list[str]) -> set[str]:
    """Which of ``keys`` some row refers to."""
    with catalog.read_session() as session:
        found = set(session.scalars(select(Image.blob_key).where(Image.blob_key.in_(keys))))
        outputs = select(Stylization.output_blob_key).where(Stylization.output_blob_key.in_(keys))
        found.update(session.scalars(outputs))
    return found


def check(catalog: Catalog) -> list[Problem]:
    """Every disagreement between the catalog and its blob store."""
    blobs = catalog.blobs
    problems: list[Problem] = []
    with ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="dreamcrawl-check") as pool:
        for page in _referenced(catalog):
            keys = sorted({key for _, _, key in page})
            verdicts = dict(zip(keys, pool.map(blobs.verify, keys), strict=True))
            for table, row_id, key in page:
                if verdicts[key] == "missing":
                    detail = f"blob {key} is missing"
                elif verdicts[key] == "corrupt":
                    detail = f"blob {key} does not match its sha256"
                else:
                    continue
                problems.append(Problem(verdicts[key], table, row_id, key, detail))  # type: ignore[arg-type]
    for objects in _batched(blobs.list_objects(), PAGE):
        known = _known(catalog, [obj.key for obj in objects])
        problems.extend(
            Problem(
                "orphan",
                None,
                None,
                obj.key,
                f"blob {obj.key} is not referenced by any row",
                modified=obj.modified,
            )
            for obj in objects
            if obj.key not in known
        )
    leftovers = list(blobs.unfinished())
    # Crawl runs keep their in-flight writes in runs/<id>/tmp (removed when they resume).
    runs_dir = catalog.settings.runs_dir
    if runs_dir.is_dir():
        leftovers += unfinished_files(sorted(p for p in runs_dir.glob("*/tmp/*") if p.is_file()))
    problems.extend(
        Problem("stale-temp", None, None, item.ident, item.detail, item.started, item)
        for item in leftovers
    )
    return problems


def repair(
    catalog: Catalog, problems: list[Problem], *, min_age: float = DEFAULT_MIN_AGE
) -> list[str]:
    """Fix what ``check`` found; return one line per action taken (or skipped)."""
    actions: list[str] = []
    now = time.time()
    broken_images = {p.row_id for p in problems if p.table == "images" and p.row_id}
    broken_outputs = {p.row_id for p in problems if p.table == "stylizations" and p.row_id}
    with catalog.session() as session:
        if broken_images:
            session.execute(
                update(Image).where(Image.id.in_(broken_images)).values(status=ImageStatus.BROKEN)
            )
            actions.extend(f"marked images #{i} broken" for i in sorted(broken_images))
        if broken_outputs:
            session.execute(
                update(Stylization)
                .where(Stylization.id.in_(broken_outputs))
                .values(status=StylizationStatus.BROKEN, error="output blob missing or corrupt")
            )
            actions.extend(f"marked stylizations #{i} broken" for i in sorted(broken_outputs))
    for problem in problems:
        if problem.kind not in ("orphan", "stale-temp"):
            continue
        if problem.modified is not None and now - problem.modified < min_age:
            name = Path(problem.key).name if problem.kind == "stale-temp" else problem.key
            actions.append(f"left {name}: younger than {min_age:g} s, a writer may own it")
            continue
        if problem.kind == "orphan":
            catalog.blobs.delete(problem.key)
        elif problem.unfinished is not None:
            catalog.blobs.discard(problem.unfinished)
        actions.append(f"removed {problem.kind} {problem.key}")
    return actions
