"""Catalog models round-trip on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.orm import selectinload

from storage import migrate
from storage.db import Catalog, make_engine
from storage.models import (
    Base,
    CrawlRun,
    CrawlStatus,
    Image,
    Rejection,
    Sighting,
    Stylization,
    StylizationStatus,
)
from storage.records import upsert_image
from tests.helpers import add_image, facts_for, photo_bytes

TABLES = {"crawl_runs", "images", "sightings", "rejections", "stylizations"}


def _stylization(image_id: int, params_hash: str = "p" * 64) -> Stylization:
    return Stylization(
        image_id=image_id,
        preset="fast",
        params_json='{"layers": {"mixed3": 1.0}, "steps": 2}',
        params_hash=params_hash,
        weights_id="inception_v3-fid-2015",
        weights_sha256="w" * 64,
        code_version="0.1.0",
        seed=7,
        device="CPU",
        octave_timings=[0.5, 0.75],
        objective_values={"before": 0.1, "after": 0.9},
        status=StylizationStatus.DONE,
    )


def test_round_trip_every_table(catalog: Catalog) -> None:
    data = photo_bytes("chelsea")
    image_id = add_image(catalog, data)
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with catalog.session() as session:
        run = CrawlRun(
            keywords=["cat", "kitten"],
            sources=["site"],
            settings={"depth": 2, "max_images": 10},
            started_at=started,
            counts={"accepted": 1, "rejected": {"too-small": 1}},
        )
        session.add(run)
        session.flush()
        session.add(
            Sighting(
                image_id=image_id,
                crawl_run_id=run.id,
                url="http://127.0.0.1/cat.jpg",
                page_url="http://127.0.0.1/",
                keywords=["cat"],
                matches=[{"keyword": "cat", "where": "alt", "text": "a grey cat"}],
                relevance=0.75,
                licence="CC BY-SA 4.0",
                attribution="Jane Doe",
            )
        )
        session.add(
            Rejection(crawl_run_id=run.id, url="http://127.0.0.1/x.gif", reason="too-small")
        )
        session.add(_stylization(image_id))
        run_id = run.id

    with catalog.session() as session:
        image = session.execute(
            sa.select(Image)
            .where(Image.id == image_id)
            .options(selectinload(Image.sightings), selectinload(Image.stylizations))
        ).scalar_one()
        facts = facts_for(data)
        assert image.sha256 == facts.sha256
        assert (image.width, image.height, image.format) == (facts.width, facts.height, "JPEG")
        assert image.width == 96
        assert image.sightings[0].matches[0]["text"] == "a grey cat"
        assert image.sightings[0].licence == "CC BY-SA 4.0"
        styl = image.stylizations[0]
        assert styl.octave_timings == [0.5, 0.75]
        assert styl.objective_values["after"] == pytest.approx(0.9)
        run = session.get(CrawlRun, run_id)
        assert run is not None
        assert run.keywords == ["cat", "kitten"]
        assert run.counts["rejected"] == {"too-small": 1}
        assert run.status == CrawlStatus.RUNNING
        # Timestamps come back as the same instant, whatever the backend's storage.
        assert run.started_at.replace(tzinfo=run.started_at.tzinfo or UTC) == started
        rejection = session.execute(sa.select(Rejection)).scalar_one()
        assert rejection.reason == "too-small"


def test_relationships_never_load_implicitly(catalog: Catalog) -> None:
    image_id = add_image(catalog, photo_bytes("coffee"))
    with catalog.session() as session:
        image = session.get(Image, image_id)
        assert image is not None
        with pytest.raises(InvalidRequestError):
            _ = image.sightings


def test_same_dream_cannot_be_recorded_twice(catalog: Catalog) -> None:
    image_id = add_image(catalog, photo_bytes("rocket"))
    with catalog.session() as session:
        session.add(_stylization(image_id))
    with pytest.raises(IntegrityError), catalog.session() as session:
        session.add(_stylization(image_id))
    # Other parameters for the same image are a different dream.
    with catalog.session() as session:
        session.add(_stylization(image_id, params_hash="q" * 64))
    with catalog.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Stylization)) == 2


def test_upsert_image_is_idempotent(catalog: Catalog) -> None:
    facts = facts_for(photo_bytes("astronaut"))
    with catalog.session() as session:
        first = upsert_image(session, facts)
        second = upsert_image(session, facts)
    assert first[1] is True
    assert second == (first[0], False)


def test_foreign_keys_are_enforced(catalog: Catalog) -> None:
    with pytest.raises(IntegrityError), catalog.session() as session:
        session.add(_stylization(image_id=424242))
        session.flush()


def test_timestamps_are_timezone_aware(catalog: Catalog) -> None:
    image_id = add_image(catalog, photo_bytes("chelsea", size=80))
    with catalog.session() as session:
        image = session.get(Image, image_id)
        assert image is not None
        created = image.created_at
    if created.tzinfo is None:  # SQLite stores the UTC wall clock
        created = created.replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)


def test_migrations_empty_to_head_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        # The migrations produce exactly what the models describe.
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        migrate.downgrade(engine, "base")
        assert not TABLES & set(sa.inspect(engine).get_table_names())
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
    finally:
        engine.dispose()


def test_readers_do_not_wait_for_a_writer(catalog: Catalog) -> None:
    add_image(catalog, photo_bytes("chelsea", size=64))
    with catalog.session() as writer:
        # The writer holds the write lock (BEGIN IMMEDIATE on SQLite) with an uncommitted row.
        upsert_image(writer, facts_for(photo_bytes("coffee", size=64)))
        writer.flush()
        with catalog.read_session() as reader:
            count = reader.scalar(sa.select(sa.func.count()).select_from(Image))
        assert count == 1  # the committed state, at once, without waiting
    with catalog.read_session() as reader:
        assert reader.scalar(sa.select(sa.func.count()).select_from(Image)) == 2
