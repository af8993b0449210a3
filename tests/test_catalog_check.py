"""`dreamcrawl catalog check` finds and repairs what it says, through the real CLI."""

from __future__ import annotations

import json

import sqlalchemy as sa

from storage.db import Catalog
from storage.models import Image, ImageStatus, Stylization, StylizationStatus
from tests.helpers import add_image, done_stylization, dreamcrawl, photo_bytes


def test_check_finds_and_repairs_missing_corrupt_and_orphan(catalog: Catalog) -> None:
    blobs = catalog.blobs
    healthy = add_image(catalog, photo_bytes("chelsea"))
    deleted = add_image(catalog, photo_bytes("coffee"))
    corrupted = add_image(catalog, photo_bytes("rocket"))
    output_key = blobs.put_bytes(photo_bytes("chelsea", size=64, fmt="PNG"))
    with catalog.session() as session:
        session.add(done_stylization(healthy, output_key, "a"))
        keys = dict(session.execute(sa.select(Image.id, Image.blob_key)).all())
    orphan = blobs.put_bytes(b"nobody refers to me")

    blobs.path(keys[deleted]).unlink()
    corrupt_path = blobs.path(keys[corrupted])
    corrupt_path.chmod(0o644)
    corrupt_path.write_bytes(b"bit rot")

    result = dreamcrawl("catalog", "check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"missing: images #{deleted}: blob {keys[deleted]} is missing" in lines
    assert f"corrupt: images #{corrupted}: blob {keys[corrupted]} does not match its sha256" in (
        lines
    )
    assert f"orphan: blob {orphan} is not referenced by any row" in lines
    assert len(lines) == 3  # the healthy image and the stylization output are fine

    as_json = json.loads(dreamcrawl("catalog", "check", "--json").stdout)
    assert sorted(p["kind"] for p in as_json["problems"]) == ["corrupt", "missing", "orphan"]

    # Rows are marked at once; a fresh orphan may belong to a writer that has not
    # committed its row yet, so it is left alone until it is older than --min-age.
    cautious = dreamcrawl("catalog", "check", "--repair")
    assert cautious.returncode == 1  # it reports what it found, then what it did
    assert f"repair: marked images #{deleted} broken" in cautious.stdout
    assert f"repair: marked images #{corrupted} broken" in cautious.stdout
    assert "a writer may own it" in cautious.stdout
    assert blobs.exists(orphan)

    fixed = dreamcrawl("catalog", "check", "--repair", "--min-age", "0")
    assert fixed.returncode == 1
    assert fixed.stdout.splitlines() == [
        f"orphan: blob {orphan} is not referenced by any row",
        f"repair: removed orphan {orphan}",
    ]
    assert not blobs.exists(orphan)
    with catalog.session() as session:
        statuses = dict(session.execute(sa.select(Image.id, Image.status)).all())
    assert statuses == {
        healthy: ImageStatus.OK,
        deleted: ImageStatus.BROKEN,
        corrupted: ImageStatus.BROKEN,
    }

    clean = dreamcrawl("catalog", "check")
    assert clean.returncode == 0, clean.stdout
    assert "catalog ok" in clean.stdout


def test_check_covers_stylization_outputs(catalog: Catalog) -> None:
    image_id = add_image(catalog, photo_bytes("astronaut"))
    output_key = catalog.blobs.put_bytes(b"pretend output")
    with catalog.session() as session:
        styl = done_stylization(image_id, output_key, "c")
        session.add(styl)
        session.flush()
        styl_id = styl.id
    catalog.blobs.path(output_key).unlink()
    result = dreamcrawl("catalog", "check", "--repair", "--min-age", "0")
    assert f"missing: stylizations #{styl_id}" in result.stdout
    with catalog.session() as session:
        row = session.get(Stylization, styl_id)
        assert row is not None
        assert row.status == StylizationStatus.BROKEN
        assert row.error == "output blob missing or corrupt"


def test_check_finds_unfinished_writes_of_crawl_runs(catalog: Catalog) -> None:
    leftover = catalog.settings.runs_dir / "7" / "tmp" / "put-abc.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half an image")
    result = dreamcrawl("catalog", "check")
    assert result.returncode == 1
    assert result.stdout.strip() == f"stale-temp: unfinished write {leftover}"
    fixed = dreamcrawl("catalog", "check", "--repair", "--min-age", "0")
    assert f"repair: removed stale-temp {leftover}" in fixed.stdout
    assert not leftover.exists()
    assert dreamcrawl("catalog", "check").returncode == 0
