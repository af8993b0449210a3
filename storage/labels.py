"""Image labels in the catalog: which images still need labels, and recording them.

The classifier itself lives in :mod:`stylize.labels` (storage imports no model); this
module takes its results as plain values. Writing is idempotent: an image already
labelled by a labeller keeps its first row, so the crawler's writer thread and
``dreamcrawl label`` can run at the same time without duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import Image, ImageStatus, Label, Labelling, Sighting
from storage.records import dialect_insert

# A label "shows" its class in listings when it is the top one or at least this probable.
SHOWN_MIN_SCORE = 0.1


@dataclass(frozen=True)
class LabelRow:
    rank: int
    wnid: str
    name: str
    score: float


@dataclass(frozen=True)
class LabelOutcome:
    """One image's labelling as the catalog stores it."""

    image_id: int
    status: str
    labels: tuple[LabelRow, ...] = ()
    detail: str | None = None


def unlabelled(
    session: Session,
    labeller: str,
    *,
    limit: int,
    after_id: int = 0,
    crawl_run_id: int | None = None,
) -> list[tuple[int, str]]:
    """``(image id, blob key)`` of ok images with no labelling by ``labeller``, by id
    (only those ``crawl_run_id`` saw, if given)."""
    done = sa.select(Labelling.image_id).where(
        Labelling.image_id == Image.id, Labelling.labeller == labeller
    )
    stmt = (
        sa.select(Image.id, Image.blob_key)
        .where(Image.status == ImageStatus.OK, Image.id > after_id, ~sa.exists(done))
        .order_by(Image.id)
        .limit(limit)
    )
    if crawl_run_id is not None:
        seen = sa.select(Sighting.image_id).where(Sighting.crawl_run_id == crawl_run_id)
        stmt = stmt.where(Image.id.in_(seen))
    return [(int(i), str(k)) for i, k in session.execute(stmt).all()]


def count_unlabelled(session: Session, labeller: str, crawl_run_id: int | None = None) -> int:
    done = sa.select(Labelling.image_id).where(
        Labelling.image_id == Image.id, Labelling.labeller == labeller
    )
    stmt = sa.select(sa.func.count()).where(Image.status == ImageStatus.OK, ~sa.exists(done))
    if crawl_run_id is not None:
        seen = sa.select(Sighting.image_id).where(Sighting.crawl_run_id == crawl_run_id)
        stmt = stmt.where(Image.id.in_(seen))
    return int(session.execute(stmt).scalar_one())


def record(session: Session, labeller: str, outcomes: Sequence[LabelOutcome]) -> int:
    """Store ``outcomes`` (skipping images ``labeller`` already did); return how many new."""
    if not outcomes:
        return 0
    table = Labelling.__table__
    stored = 0
    for outcome in outcomes:
        stmt = (
            dialect_insert(session, table)
            .values(
                image_id=outcome.image_id,
                labeller=labeller,
                status=outcome.status,
                detail=outcome.detail,
            )
            .on_conflict_do_nothing(index_elements=["image_id", "labeller"])
            .returning(table.c.id)
        )
        if session.execute(stmt).scalar_one_or_none() is None:
            continue  # labelled meanwhile by another writer
        stored += 1
        if outcome.labels:
            session.execute(
                sa.insert(Label),
                [
                    {
                        "image_id": outcome.image_id,
                        "labeller": labeller,
                        "rank": row.rank,
                        "wnid": row.wnid,
                        "name": row.name,
                        "score": row.score,
                    }
                    for row in outcome.labels
                ],
            )
    return stored


def labels_of(session: Session, image_id: int) -> list[dict]:
    """An image's labels, every labeller, best first (for ``catalog show``)."""
    stmt = (
        sa.select(Label.labeller, Label.rank, Label.wnid, Label.name, Label.score)
        .where(Label.image_id == image_id)
        .order_by(Label.labeller, Label.rank)
    )
    return [dict(r) for r in session.execute(stmt).mappings()]


def labelling_of(session: Session, image_id: int) -> list[dict]:
    stmt = sa.select(
        Labelling.labeller, Labelling.status, Labelling.detail, Labelling.created_at
    ).where(Labelling.image_id == image_id)
    return [dict(r) for r in session.execute(stmt).mappings()]


def top_labels(session: Session, image_ids: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
    """``image id → [(name, score), …]`` of the labels that show, for cards and tables."""
    if not image_ids:
        return {}
    stmt = (
        sa.select(Label.image_id, Label.name, Label.score)
        .where(
            Label.image_id.in_(list(image_ids)),
            sa.or_(Label.rank == 1, Label.score >= SHOWN_MIN_SCORE),
        )
        .order_by(Label.image_id, Label.labeller, Label.rank)
    )
    found: dict[int, list[tuple[str, float]]] = {}
    for image_id, name, score in session.execute(stmt).all():
        found.setdefault(int(image_id), []).append((str(name), float(score)))
    return found
