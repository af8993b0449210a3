"""Labels as crawls and imports go, `dreamcrawl label`, and crawling without the weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import Catalog, open_catalog
from storage.models import CrawlRun, Label, Labelling, Rejection, Sighting
from storage.settings import Settings
from tests import label_site
from tests.helpers import dreamcrawl
from tests.labels_fixture import install_labeller
from tests.site_fixture import LocalSite, serve


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with serve(LocalSite()) as served:
        label_site.build(served)
        yield served


def crawl(site: LocalSite, *extra: str) -> dict:
    args = ["crawl", "--start-url", site.url("/"), "--depth", "1", "--allow-private"]
    for keyword in label_site.KEYWORDS:
        args += ["-k", keyword]
    proc = dreamcrawl(*args, *extra, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def kept_paths(catalog: Catalog, site: LocalSite, run_id: int) -> set[str]:
    with catalog.read_session() as session:
        urls = session.scalars(sa.select(Sighting.url).where(Sighting.crawl_run_id == run_id))
        return {url.removeprefix(site.base_url) for url in urls}


def labelled_ids(catalog: Catalog) -> dict[int, str]:
    with catalog.read_session() as session:
        rows = session.execute(sa.select(Labelling.image_id, Labelling.status)).all()
    return {int(i): s for i, s in rows}


def test_a_crawl_labels_every_image_as_it_goes(
    settings: Settings, labeller_weights: Path, site: LocalSite
) -> None:
    install_labeller(labeller_weights, settings.weights_dir)
    result = crawl(site)
    catalog = open_catalog(settings)
    items = label_site.entries()
    kept = kept_paths(catalog, site, result["run_id"])
    assert kept == {e.path for e in items}  # text alone keeps every distractor
    assert label_site.precision_recall(items, kept) == (0.5, 1.0)
    with catalog.read_session() as session:
        image_ids = set(session.scalars(sa.select(Sighting.image_id)))
        chelsea = session.scalars(
            sa.select(Label.name)
            .join(Sighting, Sighting.image_id == Label.image_id)
            .where(Sighting.url == site.url("/img/cat-whole.jpg"), Label.rank == 1)
        ).one()
    assert labelled_ids(catalog) == {i: "labelled" for i in image_ids}
    assert chelsea in {"Egyptian cat", "tabby", "tiger cat"}
    assert result["labels"] == {"labelled": len(image_ids)}


def test_label_command_labels_what_a_crawl_left(
    settings: Settings, labeller_weights: Path, site: LocalSite
) -> None:
    install_labeller(labeller_weights, settings.weights_dir)
    result = crawl(site, "-s", "DREAMCRAWL_LABELS=false")
    assert "labels" not in result
    catalog = open_catalog(settings)
    assert labelled_ids(catalog) == {}
    first = dreamcrawl("label", "--limit", "5", "--batch", "2", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) | {"labeller": ""} == {
        "labeller": "",
        "labelled": 5,
        "left": 19,
    }
    rest = dreamcrawl("label")
    assert rest.returncode == 0 and "19 labelled; 0 images left" in rest.stdout
    assert len(labelled_ids(catalog)) == 24
    again = dreamcrawl("label", "--json")
    assert json.loads(again.stdout)["left"] == 0 and "labelled" not in json.loads(again.stdout)


def test_without_weights_a_crawl_goes_on_unless_it_checks_content(
    settings: Settings, site: LocalSite
) -> None:
    args = ["crawl", "-k", "cat", "--start-url", site.url("/"), "--allow-private", "--depth", "1"]
    refused = dreamcrawl(*args, "--content-check")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "dreamcrawl weights fetch --labeller" in refused.stderr
    catalog = open_catalog(settings)
    with catalog.read_session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CrawlRun)) == 0
    also = dreamcrawl(*args, "-s", "DREAMCRAWL_CONTENT_CHECK=true")
    assert also.returncode == 2 and "--content-check needs the labeller" in also.stderr

    plain = dreamcrawl(*args)
    assert plain.returncode == 0, plain.stderr
    warnings = [line for line in plain.stderr.splitlines() if "labeller" in line]
    assert len(warnings) == 1 and "dreamcrawl weights fetch --labeller" in warnings[0]
    assert "8 new images" in plain.stdout  # the cat pages, on their text alone
    assert labelled_ids(catalog) == {}


def test_import_labels_the_files(
    settings: Settings, labeller_weights: Path, tmp_path: Path
) -> None:
    from crawler.file_import import import_paths

    install_labeller(labeller_weights, settings.weights_dir)
    folder = tmp_path / "coffee"
    folder.mkdir()
    for entry in label_site.entries()[8:12]:  # the real coffee photos
        (folder / entry.path.rsplit("/", 1)[1]).write_bytes(entry.body)
    result = import_paths([folder], ["coffee"], settings=settings)
    assert result.counts["labels"] == {"labelled": 4}
    catalog = open_catalog(settings)
    with catalog.read_session() as session:
        tops = session.scalars(sa.select(Label.name).where(Label.rank == 1)).all()
        rejections = session.scalar(sa.select(sa.func.count()).select_from(Rejection))
    assert tops == ["espresso"] * 4 and rejections == 0
