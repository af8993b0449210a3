"""What the catalog says about one crawl run as a whole: the URLs it ended, its counts,
and the cleanup of what a killed writer of the run left behind (see docs/crawler.md)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.db import Catalog
from storage.models import Image, Rejection, Sighting

# The run's list of blobs written before their rows committed (crawler.writer).
JOURNAL = "blobs.journal"
# The crawler process's exit statuses (crawler.run) besides 0, finished: interrupted and
# recorded; or stopped while the catalog was out of reach, so the row says ``running``.
EXIT_INTERRUPTED = 3
EXIT_UNRECORDED = 4


def run_dir(catalog: Catalog, run_id: int) -> Path:
    """The run's scratch folder: its journal, temporary files and Scrapy log."""
    return catalog.settings.runs_dir / str(run_id)


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
    folder = run_dir(catalog, run_id)
    shutil.rmtree(folder / "tmp", ignore_errors=True)
    journal = folder / JOURNAL
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
