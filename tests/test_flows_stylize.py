"""The stylize flow on a real Prefect server, real catalog, real InceptionV3 weights."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image as PILImage

from storage import jobs
from storage.db import Catalog, open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from stylize.params import DreamParams
from tests.helpers import add_image, photo_bytes, visible_device_kind

pytestmark = pytest.mark.usefixtures("prefect_server")

FAST = {"dream": DreamParams(presets=["fast"], steps=2)}


@pytest.fixture
def dream_env(settings: Settings, converted_weights: Path, monkeypatch) -> Catalog:
    monkeypatch.setenv("DREAMCRAWL_WEIGHTS", str(converted_weights))
    catalog = open_catalog(settings)
    for name in ("chelsea", "coffee"):
        add_image(catalog, photo_bytes(name, size=160))
    return catalog


def _rows(catalog: Catalog) -> list[Stylization]:
    with catalog.session() as session:
        return list(session.scalars(sa.select(Stylization).order_by(Stylization.id)))


def _artifacts(flow_run_id: str) -> dict[str, Any]:
    """The artifacts a flow run published, read back from the Prefect server's API."""
    from prefect.client.orchestration import get_client

    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    with get_client(sync_client=True) as client:
        response = client._client.post("/artifacts/filter", json=body)
    response.raise_for_status()
    return {a["key"]: a for a in response.json()}


def _logs(flow_run_id: str) -> list[str]:
    """The log messages of a flow run, read back from the Prefect server's API once
    this process has sent every line it holds (they are shipped in batches)."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=60)
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    with get_client(sync_client=True) as client:
        response = client._client.post("/logs/filter", json=body)
    response.raise_for_status()
    return [entry["message"] for entry in response.json()]


def test_stylize_records_lineage_and_reruns_are_free(dream_env: Catalog) -> None:
    from flows.flows import stylize_flow

    state = stylize_flow(**FAST, return_state=True)
    result = state.result()
    assert result["summary"]["dreamed"] == 2, result["outcomes"]
    rows = _rows(dream_env)
    assert [r.status for r in rows] == [StylizationStatus.DONE] * 2
    flow_run_id = str(state.state_details.flow_run_id)
    for row in rows:
        assert row.prefect_flow_run_id == flow_run_id
        assert row.preset == "fast"
        assert json.loads(row.params_json)["steps"] == 2
        assert len(row.params_hash) == 64
        assert row.weights_id.startswith("inceptionv3-imagenet-")
        assert row.device.startswith(visible_device_kind())
        assert row.objective_values["after"] > row.objective_values["before"]
        assert len(row.octave_timings) == 2
        assert row.output_blob_key == row.output_sha256
        with dream_env.blobs.open(row.output_blob_key) as fh, PILImage.open(fh) as out:
            assert out.width == 160

    artifacts = _artifacts(flow_run_id)
    assert {"stylize-counts", "stylize-summary"} <= set(artifacts)
    table = artifacts["stylize-counts"]["data"]
    table = json.loads(table) if isinstance(table, str) else table
    assert {"metric": "dreamed", "value": 2} in table
    summary = str(artifacts["stylize-summary"]["data"])
    assert "Dreams: **2** new" in summary
    # Before/after thumbnails embedded as data URIs, small enough for the UI.
    thumbnails = summary.count("](data:image/jpeg;base64,")
    assert thumbnails == 4 and len(summary) < 60_000
    # The progress artifact lives on the run the operator started, and reached the end.
    assert artifacts["dream-progress"]["data"] == 100.0
    assert artifacts["dream-progress"]["description"] == "dreamed 2 of 2 (2 ended)"
    logs = _logs(flow_run_id)
    assert sum("dreamed image" in line and "with fast in" in line for line in logs) == 2

    again = stylize_flow(**FAST)
    assert again["summary"]["dreamed"] == 0
    assert [r.finished_at for r in _rows(dream_env)] == [r.finished_at for r in rows]


def test_crashed_run_leftovers_are_picked_up(dream_env: Catalog) -> None:
    from flows.dreaming import plan_jobs
    from flows.flows import stylize_flow

    settings = dream_env.settings
    owed = plan_jobs(settings, DreamParams(), weights=os.environ["DREAMCRAWL_WEIGHTS"]).jobs
    assert len(owed) == 2
    # A worker that died mid-dream leaves its row "running" with a lease that expires...
    with dream_env.session() as session:
        assert jobs.claim(session, owed[0].stylization_id, lease=timedelta(seconds=-1))
    # ...and a failure is recorded on its row, to be retried.
    with dream_env.session() as session:
        assert jobs.claim(session, owed[1].stylization_id)
        jobs.fail(session, owed[1].stylization_id, "MemoryError: out of memory")

    result = stylize_flow(dream=DreamParams(presets=["fast"]))
    assert result["summary"]["dreamed"] == 2, result["outcomes"]
    rows = _rows(dream_env)
    assert [r.status for r in rows] == [StylizationStatus.DONE] * 2
    assert [r.attempts for r in rows] == [2, 2]
    assert all(r.error is None for r in rows)
    assert len({(r.image_id, r.params_hash, r.weights_sha256) for r in rows}) == 2


def test_live_lease_is_not_stolen(dream_env: Catalog) -> None:
    from flows.dreaming import plan_jobs
    from flows.flows import stylize_flow

    owed = plan_jobs(
        dream_env.settings, DreamParams(), weights=os.environ["DREAMCRAWL_WEIGHTS"]
    ).jobs
    with dream_env.session() as session:
        assert jobs.claim(session, owed[0].stylization_id, lease=timedelta(hours=1))
    result = stylize_flow(dream=DreamParams(presets=["fast"]))
    assert result["summary"]["dreamed"] == 1
    statuses = [r.status for r in _rows(dream_env)]
    assert statuses == [StylizationStatus.RUNNING, StylizationStatus.DONE]


def test_broken_image_fails_cleanly_and_is_recorded(dream_env: Catalog) -> None:
    from flows.flows import stylize_flow

    # Bytes that are not an image, stored as if they were one.
    bad = dream_env.blobs.put_bytes(b"\x89PNG\r\n\x1a\nnot really")
    from storage.records import ImageFacts, upsert_image

    with dream_env.session() as session:
        upsert_image(session, ImageFacts(sha256=bad, width=10, height=10, format="PNG", bytes=17))
    result = stylize_flow(**FAST)
    assert result["summary"]["dreamed"] == 2, result["outcomes"]
    assert result["summary"]["failed"] == 1
    failed = [r for r in _rows(dream_env) if r.status == StylizationStatus.FAILED]
    assert len(failed) == 1
    assert failed[0].error == "OSError: Truncated File Read"
    assert failed[0].attempts == 1


def test_stylize_on_a_dask_local_cluster(dream_env: Catalog) -> None:
    from flows.flows import stylize_flow

    result = stylize_flow(**FAST, dask_workers=2)
    outcomes = result["outcomes"]
    assert [o["status"] for o in outcomes] == ["done", "done"]
    pids = {o["pid"] for o in outcomes}
    assert os.getpid() not in pids  # dreamed in the Dask worker processes
    assert all(r.status == StylizationStatus.DONE for r in _rows(dream_env))


def test_gpu_slot_is_a_prefect_concurrency_limit(dream_env: Catalog) -> None:
    from prefect.client.orchestration import get_client

    from flows.flows import stylize_flow

    result = stylize_flow(**FAST, gpu_slot="gpu")
    assert result["summary"]["dreamed"] == 2, result["outcomes"]
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("gpu")
    assert limit.limit == 1
    assert limit.active_slots == 0  # every dream gave its slot back
