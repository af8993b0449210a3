"""Crawl → stylize end to end: the pipeline flow on the bundled demo site."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.demo_site import serve_demo_site
from storage.db import open_catalog
from storage.integrity import check
from storage.models import CrawlRun, Image, Rejection, Sighting, Stylization, StylizationStatus
from storage.settings import Settings
from stylize.params import DreamParams
from tests.helpers import demo_crawl

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_pipeline_crawls_then_dreams_what_it_found(
    settings: Settings,
    converted_weights: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.flows import pipeline_flow

    monkeypatch.setenv("DREAMCRAWL_WEIGHTS", str(converted_weights))
    with serve_demo_site() as base_url:
        state = pipeline_flow(
            **demo_crawl(base_url, max_images=10, depth=2),
            dream=DreamParams(steps=2),
            return_state=True,
        )
    result = state.result()
    flow_run_id = str(state.state_details.flow_run_id)
    crawl = result["crawl"]
    catalog = open_catalog(settings)
    with catalog.session() as session:
        run = session.get(CrawlRun, crawl["crawl_run_id"])
        assert run is not None
        assert run.prefect_flow_run_id == flow_run_id
        cat_sightings = session.scalars(
            sa.select(Sighting).where(Sighting.crawl_run_id == run.id)
        ).all()
        reasons = set(
            session.scalars(sa.select(Rejection.reason).where(Rejection.crawl_run_id == run.id))
        )
        rows = session.scalars(sa.select(Stylization)).all()
        images = session.scalars(sa.select(Image)).all()

    # The cat photo was found twice (second URL is a duplicate) and dreamed once.
    assert any(s.duplicate for s in cat_sightings)
    assert all("cat" in s.keywords for s in cat_sightings)
    assert crawl["image_ids"] == sorted({s.image_id for s in cat_sightings})
    assert reasons  # the broken image and the robots-protected one are explained
    assert [r.status for r in rows] == [StylizationStatus.DONE] * len(crawl["image_ids"])
    assert {r.image_id for r in rows} == set(crawl["image_ids"])
    assert all(r.prefect_flow_run_id == flow_run_id for r in rows)
    assert len(images) >= len(rows)
    assert result["summary"]["dreamed"] == len(rows)
    assert result["summary"]["duplicates"] >= 1
    assert check(catalog) == []
