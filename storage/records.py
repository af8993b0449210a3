"""Catalog writes that must stay correct under concurrency.

Two crawler processes (or a crawl and an import) may find the same image at the same
moment; the sha256 unique constraint decides, and ``INSERT … ON CONFLICT DO NOTHING``
turns the loser's insert into a no-op instead of an error the user would see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Image


@dataclass(frozen=True)
class ImageFacts:
    """What validation learned about an image's original bytes."""

    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    phash: str | None = None

    @property
    def blob_key(self) -> str:
        # The blob store is addressed by the same sha256.
        return self.sha256

    def image_row(self, near_duplicate_of_id: int | None = None) -> dict[str, Any]:
        """The ``images`` row of these facts (one place, for single and batch inserts)."""
        return {
            "sha256": self.sha256,
            "phash": self.phash,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "bytes": self.bytes,
            "blob_key": self.blob_key,
            "near_duplicate_of_id": near_duplicate_of_id,
        }


def dialect_insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect: {dialect}")


def upsert_image(
    session: Session, facts: ImageFacts, *, near_duplicate_of_id: int | None = None
) -> tuple[int, bool]:
    """Insert the image unless its sha256 is known; return (image id, created)."""
    values = facts.image_row(near_duplicate_of_id)
    table = Image.__table__
    stmt = (
        dialect_insert(session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(table.c.id)
    )
    inserted = session.execute(stmt).scalar_one_or_none()
    if inserted is not None:
        return int(inserted), True
    existing = session.execute(select(Image.id).where(Image.sha256 == facts.sha256)).scalar_one()
    return int(existing), False


def upsert_images(
    session: Session, rows: dict[str, dict[str, Any]]
) -> tuple[dict[str, int], set[str]]:
    """The batch form of :func:`upsert_image`, for image rows by sha256: every image's
    id by sha256, and the sha256s this statement inserted (the others were known)."""
    if not rows:
        return {}, set()
    table = Image.__table__
    stmt = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(table.c.sha256, table.c.id)
    )
    # RETURNING yields only the rows this statement inserted: a sha256 another writer
    # committed first is looked up instead.
    ids = {sha: int(i) for sha, i in session.execute(stmt, list(rows.values()))}
    new = set(ids)
    missing = [sha for sha in rows if sha not in ids]
    if missing:
        known = select(Image.sha256, Image.id).where(Image.sha256.in_(missing))
        ids.update((sha, int(i)) for sha, i in session.execute(known))
    return ids, new
