"""``dreamcrawl catalog check``: do the catalog and the blob store agree?

Problems it finds:

- ``missing``: a row names a blob that is not in the store;
- ``corrupt``: a blob's bytes no longer hash to its key;
- ``orphan``: a blob no row refers to (a writer died between blob and row);
- ``stale-temp``: a temporary file a killed writer left in ``objects/tmp`` or in a
  crawl run's ``runs/<id>/tmp``.

``repair`` removes orphans and temporary files and marks rows whose blob is missing or
corrupt as ``broken`` (it never deletes a row: the lineage stays readable). Files younger
than ``min_age`` seconds are left alone: a crawler may be between writing a blob and
committing its row, and deleting that blob would break the row it is about to write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from storage.blobs import BlobStore
from storage.db import Catalog
from storage.models import Image, ImageStatus, Stylization, StylizationStatus


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | corrupt | orphan | stale-temp
    table: str | None
    row_id: int | None
    key: str
    detail: str

    def describe(self) -> str:
        where = f"{self.table} #{self.row_id}: " if self.table else ""
        return f"{self.kind}: {where}{self.detail}"


def _check_blob(blobs: BlobStore, key: str) -> str | None:
    """None if the blob is fine, else the kind of problem."""
    if not blobs.exists(key):
        return "missing"
    if blobs.hash_of(key) != key:
        return "corrupt"
    return None


def _referenced(catalog: Catalog) -> Iterator[tuple[str, int, str, bool]]:
    """(table, row id, blob key, already marked broken) for every blob a row refers to."""
    with catalog.read_session() as session:
        images = select(Image.id, Image.blob_key, Image.status)
        for row_id, key, status in session.execute(images):
            yield "images", row_id, key, status == ImageStatus.BROKEN
        outputs = select(Stylization.id, Stylization.output_blob_key, Stylization.status).where(
            Stylization.output_blob_key.is_not(None)
        )
        for row_id, key, status in session.execute(outputs):
            yield "stylizations", row_id, key, status == StylizationStatus.BROKEN


def check(catalog: Catalog) -> list[Problem]:
    """Every disagreement between the catalog and its blob store."""
    blobs = catalog.blobs
    problems: list[Problem] = []
    referenced: set[str] = set()
    verified: dict[str, str | None] = {}
    for table, row_id, key, marked_broken in _referenced(catalog):
        referenced.add(key)
        if marked_broken:
            continue  # a known, recorded problem: the row says so itself
        if key not in verified:
            verified[key] = _check_blob(blobs, key)
        kind = verified[key]
        if kind == "missing":
            problems.append(Problem(kind, table, row_id, key, f"blob {key} is missing"))
        elif kind == "corrupt":
            problems.append(
                Problem(kind, table, row_id, key, f"blob {key} does not match its sha256")
            )
    for key in blobs.iter_keys():
        if key not in referenced:
            problems.append(
                Problem("orphan", None, None, key, f"blob {key} is not referenced by any row")
            )
    leftovers = list(blobs.temp_files())
    # Crawl runs keep their in-flight writes in runs/<id>/tmp (removed when they resume).
    runs_dir = catalog.settings.runs_dir
    if runs_dir.is_dir():
        leftovers += sorted(p for p in runs_dir.glob("*/tmp/*") if p.is_file())
    for tmp in leftovers:
        problems.append(Problem("stale-temp", None, None, str(tmp), f"unfinished write {tmp}"))
    return problems


DEFAULT_MIN_AGE = 600.0


def repair(
    catalog: Catalog, problems: list[Problem], *, min_age: float = DEFAULT_MIN_AGE
) -> list[str]:
    """Fix what ``check`` found; return one line per action taken (or skipped)."""
    actions: list[str] = []
    now = time.time()

    def young(path: Path) -> bool:
        try:
            return now - path.stat().st_mtime < min_age
        except FileNotFoundError:
            return False

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
        if problem.kind == "orphan":
            path = catalog.blobs.path(problem.key)
        elif problem.kind == "stale-temp":
            path = Path(problem.key)
        else:
            continue
        if young(path):
            actions.append(f"left {path.name}: younger than {min_age:g} s, a writer may own it")
            continue
        path.unlink(missing_ok=True)
        actions.append(f"removed {problem.kind} {problem.key}")
    return actions
