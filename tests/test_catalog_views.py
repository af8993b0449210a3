"""The analyst views: their columns, and the rows they give on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage import migrate
from storage.db import Catalog, make_engine
from storage.models import Stylization
from storage.views import VIEWS
from tests.catalog_data import build, canonical

REPO = Path(__file__).resolve().parents[1]


def rows(catalog: Catalog, sql: str) -> list[dict[str, Any]]:
    with catalog.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


def test_views_have_the_documented_columns(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        for view in VIEWS.values():
            result = conn.execute(sa.text(f"SELECT * FROM {view.name} WHERE 1 = 0"))
            assert tuple(result.keys()) == view.column_names, view.name


def test_docs_describe_every_view_and_column() -> None:
    text = (REPO / "docs" / "catalog.md").read_text()
    for view in VIEWS.values():
        section = re.search(rf"^### `{view.name}`\n(.*?)(?=^### |^## |\Z)", text, re.M | re.S)
        assert section, f"docs/catalog.md has no section for {view.name}"
        for column in view.column_names:
            assert f"| `{column}` |" in section.group(1), f"{view.name}.{column} undocumented"


def test_v_stylized_reads_parameters_of_every_shape(catalog: Catalog) -> None:
    built = build(catalog)
    got = {
        r["stylization_id"]: r
        for r in rows(catalog, "SELECT * FROM v_stylized ORDER BY stylization_id")
    }
    fast = got[built.stylizations["chelsea_fast"]]
    assert (fast["preset"], fast["layers"], fast["channel"]) == ("fast", "mixed3,mixed5", None)
    assert (fast["octaves"], fast["steps"], fast["tile"], fast["seed"]) == (3, 10, 512, 7)
    assert fast["octave_scale"] == 1.4 and fast["step_size"] == 0.01
    assert fast["total_seconds"] == 2.5 and fast["duration_seconds"] == 2.5
    assert fast["source_url"] == "http://127.0.0.1:8000/img/chelsea.jpg"
    assert fast["source"] == "site" and fast["keywords"] == "cat"
    assert fast["licence"] == "CC BY 4.0"
    key = fast["output_sha256"]
    assert fast["output_path"] == f"objects/{key[:2]}/{key[2:]}"
    assert (catalog.settings.home / fast["output_path"]).is_file()
    assert (catalog.settings.home / fast["image_path"]).is_file()

    single = got[built.stylizations["chelsea_single"]]
    assert (single["layers"], single["channel"], single["octaves"]) == ("mixed4", "mixed4:97", 1)
    assert single["tile"] is None and single["total_seconds"] is None
    assert single["status"] == "failed" and single["error"] == "out of memory"
    assert single["output_path"] is None

    classic = got[built.stylizations["astronaut_classic"]]
    # [name, weight] pairs, sorted in network order (mixed4 before mixed10).
    assert classic["layers"] == "mixed4,mixed10"
    assert classic["channel"] == "mixed7:3"
    assert classic["octaves"] == 5  # a list of octave indexes counts its entries
    assert classic["total_seconds"] == 20.0  # objects with "seconds": 2+3+4+5+6
    assert classic["duration_seconds"] == 21.0
    assert classic["keywords"] == "space" and classic["attribution"] == "NASA"


def test_v_stylized_string_layers_and_channel(catalog: Catalog) -> None:
    built = build(catalog)
    params = canonical({"layers": "mixed3", "channel": "mixed3:5", "octaves": 2.0})
    with catalog.session() as session:
        session.add(
            Stylization(
                image_id=built.images["rocket"],
                params_json=params,
                params_hash="0" * 64,
                weights_id="w",
                weights_sha256="1" * 64,
                code_version="0.1.0",
                octave_timings={"not": "a list"},
            )
        )
    got = rows(catalog, "SELECT * FROM v_stylized WHERE preset IS NULL")
    assert len(got) == 1
    row = got[0]
    assert (row["layers"], row["channel"], row["octaves"]) == ("mixed3", "mixed3:5", 2)
    assert row["status"] == "pending" and row["total_seconds"] is None
    assert row["steps"] is None and row["source_url"] is None


def test_v_images_first_sighting_and_counts(catalog: Catalog) -> None:
    built = build(catalog)
    got = {r["image_id"]: r for r in rows(catalog, "SELECT * FROM v_images")}
    chelsea = got[built.images["chelsea"]]
    assert chelsea["first_url"] == "http://127.0.0.1:8000/img/chelsea.jpg"
    assert chelsea["first_crawl_run_id"] == built.runs["crawl"]
    assert (chelsea["sightings"], chelsea["stylizations"], chelsea["stylizations_done"]) == (
        2,
        2,
        1,
    )
    assert chelsea["keywords"] == "cat"
    rocket = got[built.images["rocket"]]
    assert rocket["first_url"] is None and rocket["sightings"] == 0
    assert rocket["keywords"] is None


def test_run_rejection_and_keyword_views(catalog: Catalog) -> None:
    built = build(catalog)
    runs = {r["crawl_run_id"]: r for r in rows(catalog, "SELECT * FROM v_crawl_runs")}
    crawl = runs[built.runs["crawl"]]
    assert (crawl["keywords"], crawl["sources"]) == ("cat,space", "site")
    assert (crawl["sightings"], crawl["images"], crawl["rejections"]) == (2, 2, 3)
    assert crawl["duration_seconds"] == 90.0
    imported = runs[built.runs["import"]]
    assert imported["keywords"] == "coffee,cat"  # in the order asked for
    assert imported["duplicate_sightings"] == 1 and imported["duration_seconds"] == 4.5
    assert runs[built.runs["failed"]]["duration_seconds"] is None

    by_reason = rows(
        catalog,
        "SELECT crawl_run_id, reason, rejections, example_url FROM v_rejections_by_reason "
        "ORDER BY crawl_run_id, reason",
    )
    assert [(r["crawl_run_id"], r["reason"], r["rejections"]) for r in by_reason] == [
        (built.runs["crawl"], "not-an-image", 1),
        (built.runs["crawl"], "too-small", 2),
        (built.runs["import"], "duplicate", 1),
        (built.runs["import"], "not-an-image", 1),
    ]
    assert by_reason[1]["example_url"] == "http://127.0.0.1:8000/img/tiny.gif"

    yield_ = {r["keyword"]: r for r in rows(catalog, "SELECT * FROM v_keyword_yield")}
    assert set(yield_) == {"cat", "space", "coffee", "rocket"}
    cat = yield_["cat"]
    assert (cat["crawl_runs"], cat["sightings"], cat["images"]) == (2, 2, 1)
    assert (cat["duplicate_sightings"], cat["stylized_images"], cat["run_rejections"]) == (1, 1, 5)
    assert yield_["rocket"]["images"] == 0 and yield_["rocket"]["crawl_runs"] == 1
    assert yield_["coffee"]["stylized_images"] == 0

    timings = {r["preset"]: r for r in rows(catalog, "SELECT * FROM v_preset_timings")}
    assert timings["classic"]["avg_seconds"] == 20.0
    assert (timings["fast"]["stylizations"], timings["fast"]["total_seconds"]) == (1, 2.5)
    assert timings["paper-single-channel"]["failed"] == 1
    assert timings["paper-single-channel"]["stylizations"] == 0


# What the migrations after each revision add: views, tables and stylizations indexes.
ADDED_AFTER = {
    "0001": (set(VIEWS), set(), {"ix_stylizations_preset_created_at"}),
    "0002": ({"v_labels"}, {"labels", "labellings"}, set()),
}


def schema(engine: sa.Engine) -> tuple[set[str], set[str], set[str]]:
    inspector = sa.inspect(engine)
    indexes = {ix["name"] or "" for ix in inspector.get_indexes("stylizations")}
    return set(inspector.get_view_names()), set(inspector.get_table_names()), indexes


@pytest.mark.parametrize("revision", ADDED_AFTER)
def test_migrations_down_and_up(db_url: str, revision: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        migrate.downgrade(engine, revision)
        for found, added in zip(schema(engine), ADDED_AFTER[revision], strict=True):
            assert not found & added
        migrate.upgrade(engine)
        for found, added in zip(schema(engine), ADDED_AFTER[revision], strict=True):
            assert added <= found
    finally:
        engine.dispose()
