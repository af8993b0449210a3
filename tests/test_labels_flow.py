"""`--content-check` end to end in a Prefect flow: the crawl flow on the labelled test site."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.commands.crawl import label_lines
from storage.db import open_catalog
from storage.models import Labelling, Rejection, Sighting
from storage.settings import Settings
from tests import label_site
from tests.labels_fixture import install_labeller
from tests.site_fixture import LocalSite, serve

pytestmark = pytest.mark.usefixtures("prefect_server")

SUNSET = label_site.Entry(
    "/img/sunset.png",
    "sunset",
    "a sunset",
    False,
    label_site.encode(label_site.flat("orange"), "PNG"),
)


def test_content_check_keeps_only_images_that_show_their_keyword(
    settings: Settings, labeller_weights: Path
) -> None:
    from flows.flows import crawl_flow

    install_labeller(labeller_weights, settings.weights_dir)
    items = [*label_site.entries(), SUNSET]
    with serve(LocalSite()) as site:
        label_site.build(site, items)
        result = crawl_flow(
            keywords=[*label_site.KEYWORDS, "sunset"],
            start_urls=[site.url("/")],
            allow_private=True,
            depth=1,
            max_images=0,
            content_check=True,
        )
    crawl = result["crawl"]
    catalog = open_catalog(settings)
    with catalog.read_session() as session:
        urls = session.scalars(
            sa.select(Sighting.url).where(Sighting.crawl_run_id == crawl["crawl_run_id"])
        ).all()
        rejected = {
            x.url.removeprefix(site.base_url): x
            for x in session.scalars(
                sa.select(Rejection).where(Rejection.reason == "content-mismatch")
            )
        }
        labelled = session.scalar(sa.select(sa.func.count()).select_from(Labelling))
    kept = {url.removeprefix(site.base_url) for url in urls}
    real = {e.path for e in items if e.real}
    assert kept == real | {SUNSET.path}  # the sunset has no ImageNet class: text alone
    assert set(rejected) == {e.path for e in items if not e.real and e is not SUNSET}
    banner = rejected["/img/d-cat-banner.png"].detail or ""
    assert banner.startswith("no top-5 label under cat: ") and "clock" in banner
    assert label_site.precision_recall(label_site.entries(), kept - {SUNSET.path}) == (1.0, 1.0)
    # The content check's labels were kept: every kept image is labelled, once.
    assert labelled == len(set(session_ids(catalog, crawl["crawl_run_id"])))
    check = crawl["counts"]["content_check"]
    assert (check["passed"], check["rejected"], check["text-only"]) == (12, 12, 1)
    assert check["text_only_keywords"] == ["sunset"]
    lines = label_lines(crawl["counts"])
    assert (
        "content check: 12 passed, 12 rejected (content-mismatch), 1 accepted on text alone"
        in lines
    )
    assert any("'sunset' names no ImageNet class" in line for line in lines)
    assert result["labels"] == {}  # the crawl labelled everything itself


def session_ids(catalog, run_id: int) -> list[int]:
    with catalog.read_session() as session:
        return list(
            session.scalars(sa.select(Sighting.image_id).where(Sighting.crawl_run_id == run_id))
        )
