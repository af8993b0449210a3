"""Typed SQLAlchemy 2.0 models of the catalog.

The catalog keeps crawl runs, images (one row per distinct
sha256), sightings (where and why an image was seen), rejections (so nothing a crawl saw
disappears silently) and stylizations (every dream with its full lineage).

Relationships are ``lazy="raise"`` so that no query hides behind an attribute access:
code states what it loads. A metadata naming convention keeps Alembic migrations
deterministic across SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256_LEN = 64


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in the catalog is UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class CrawlStatus(StrEnum):
    """Where a crawl run stands (``crawl_runs.status``)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ImageStatus(StrEnum):
    """Whether an image's original blob can be used (``images.status``)."""

    OK = "ok"
    BROKEN = "broken"  # its blob is missing or corrupt (set by `catalog check --repair`)


class LabellingStatus(StrEnum):
    """How an image's labelling went (``labellings.status``, migration 0003)."""

    LABELLED = "labelled"
    TOO_SMALL = "too-small"  # under the classifier's minimum side: recorded, not dropped
    UNREADABLE = "unreadable"  # its blob could not be read or decoded


class StylizationStatus(StrEnum):
    """Where a dream stands in the queue (``stylizations.status``, storage/jobs.py)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BROKEN = "broken"  # output blob missing or corrupt


class CrawlRun(Base):
    """One crawl (or import): what was asked, how it went, what it counted."""

    __tablename__ = "crawl_runs"
    __table_args__ = (Index(None, "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="crawl")  # crawl | import
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    sources: Mapped[list[Any]] = mapped_column(default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CrawlStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))

    sightings: Mapped[list[Sighting]] = relationship(back_populates="crawl_run", lazy="raise")
    rejections: Mapped[list[Rejection]] = relationship(back_populates="crawl_run", lazy="raise")


class Image(Base):
    """A distinct image, identified by the sha256 of its original bytes."""

    __tablename__ = "images"
    # `catalog list --kind images --status …`, newest first (migration 0002).
    __table_args__ = (Index(None, "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_LEN), unique=True)
    phash: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(String(SHA256_LEN))
    status: Mapped[str] = mapped_column(String(16), default=ImageStatus.OK, index=True)
    near_duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )

    sightings: Mapped[list[Sighting]] = relationship(back_populates="image", lazy="raise")
    stylizations: Mapped[list[Stylization]] = relationship(back_populates="image", lazy="raise")


class Sighting(Base):
    """Where an image was seen, why it matched, and under which licence."""

    __tablename__ = "sightings"
    __table_args__ = (
        UniqueConstraint("crawl_run_id", "url"),
        Index(None, "image_id"),
        # A run's counts in `v_crawl_runs` / `catalog list --kind runs` (migration 0002).
        Index(None, "crawl_run_id", "duplicate", "image_id"),
        # `catalog list --keyword` looks up the few distinct keyword lists (migration 0002).
        Index("ix_sightings_keywords_text", text("CAST(keywords AS TEXT)")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    url: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32), default="site", index=True)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    # [{"keyword": "cat", "where": "alt", "text": "a grey cat"}, ...]
    matches: Mapped[list[Any]] = mapped_column(default=list)
    relevance: Mapped[float] = mapped_column(Float, default=0.0)
    duplicate: Mapped[bool] = mapped_column(default=False)
    near_duplicate: Mapped[bool] = mapped_column(default=False)
    licence: Mapped[str | None] = mapped_column(Text)
    attribution: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    image: Mapped[Image] = relationship(back_populates="sightings", lazy="raise")
    crawl_run: Mapped[CrawlRun | None] = relationship(back_populates="sightings", lazy="raise")


class Rejection(Base):
    """A URL a crawl considered and did not keep, with the reason."""

    __tablename__ = "rejections"
    __table_args__ = (
        UniqueConstraint("crawl_run_id", "url"),
        # `catalog show` finds an image's rejections by URL; per-run reason counts.
        Index(None, "url"),
        Index(None, "crawl_run_id", "reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    url: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    crawl_run: Mapped[CrawlRun | None] = relationship(back_populates="rejections", lazy="raise")


class Stylization(Base):
    """One dream of one image with one parameter set and one weights file.

    The unique key (image, parameter hash, weights sha256) is what guarantees a dream is
    never computed twice; ``lease_expires_at`` lets a crashed worker's row be picked up
    again instead of staying "running" forever.
    """

    __tablename__ = "stylizations"
    __table_args__ = (
        UniqueConstraint("image_id", "params_hash", "weights_sha256"),
        Index(None, "status", "lease_expires_at"),
        # `catalog list` filters by preset or status, newest first (migration 0002).
        Index(None, "preset", "created_at"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    preset: Mapped[str | None] = mapped_column(String(64), index=True)
    params_json: Mapped[str] = mapped_column(Text)
    params_hash: Mapped[str] = mapped_column(String(SHA256_LEN))
    weights_id: Mapped[str] = mapped_column(String(128))
    weights_sha256: Mapped[str] = mapped_column(String(SHA256_LEN))
    code_version: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    device: Mapped[str | None] = mapped_column(String(64))
    octave_timings: Mapped[list[Any]] = mapped_column(default=list)
    objective_values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_blob_key: Mapped[str | None] = mapped_column(String(SHA256_LEN))
    output_sha256: Mapped[str | None] = mapped_column(String(SHA256_LEN))
    status: Mapped[str] = mapped_column(String(16), default=StylizationStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who claimed the row last ("host:pid" of the worker process; migration 0004).
    lease_holder: Mapped[str | None] = mapped_column(String(255))
    prefect_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    image: Mapped[Image] = relationship(back_populates="stylizations", lazy="raise")


class Labelling(Base):
    """That an image went through a labeller, and how it went (migration 0003).

    One row per (image, labeller): the unlabelled images are the ones without a row, so
    ``dreamcrawl label`` and the crawler never label twice.
    """

    __tablename__ = "labellings"
    __table_args__ = (UniqueConstraint("image_id", "labeller"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    labeller: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=LabellingStatus.LABELLED)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Label(Base):
    """One of an image's top ImageNet classes: WordNet id, readable name, probability."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("image_id", "labeller", "rank"),
        # `catalog list --label` / `--label-of` look images up by class.
        Index(None, "wnid", "image_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    labeller: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)  # 1 = most probable
    wnid: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    score: Mapped[float] = mapped_column(Float)
