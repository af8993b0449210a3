"""Cancelling a running stylize flow from the API frees its images at once.

A real ``prefect server start`` and ``dreamcrawl serve`` run in their own processes; the
test creates a stylize run from the served deployment, waits until a dream holds its
row, cancels the run the way the UI's Cancel button does, and checks that the
``on_cancellation`` hook handed the row back (``pending``, no lease) instead of leaving
it ``running`` for the 30-minute lease.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from storage.db import open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from tests.conftest import REPO
from tests.helpers import add_image, photo_bytes
from tests.prefect_fixture import wait_for


def _rows(settings: Settings) -> list[Stylization]:
    with open_catalog(settings).session() as session:
        return list(session.scalars(sa.select(Stylization).order_by(Stylization.id)))


def test_cancelled_run_hands_its_images_back(
    settings: Settings, converted_weights: Path, tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    catalog = open_catalog(settings)
    add_image(catalog, photo_bytes("chelsea", size=160))
    env = {**os.environ, **prefect_api, "DREAMCRAWL_WEIGHTS": str(converted_weights)}
    api = prefect_api["PREFECT_API_URL"]
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deployment: dict = {}

        def served() -> bool:
            answer = httpx.get(f"{api}/deployments/name/stylize/stylize", timeout=5)
            deployment.update(answer.json() if answer.status_code == 200 else {})
            return bool(deployment)

        wait_for(served, "the stylize deployment")
        # Steps enough to keep the dream busy until it is cancelled.
        dream = {"presets": ["fast"], "octaves": 1, "steps": 10_000}
        created = httpx.post(
            f"{api}/deployments/{deployment['id']}/create_flow_run",
            json={"parameters": {"dream": dream}},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        wait_for(
            lambda: [r.status for r in _rows(settings)] == [StylizationStatus.RUNNING],
            "the dream to claim its row",
        )
        held = _rows(settings)[0]
        assert held.prefect_flow_run_id == run_id and held.lease_expires_at is not None

        cancel = httpx.post(
            f"{api}/flow_runs/{run_id}/set_state",
            json={"state": {"type": "CANCELLING"}, "force": True},
            timeout=10,
        )
        assert cancel.status_code in (200, 201), cancel.text

        def state() -> str:
            return httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state_type"]

        wait_for(lambda: state() == "CANCELLED", "the run to be cancelled")
        wait_for(
            lambda: [r.status for r in _rows(settings)] == [StylizationStatus.PENDING],
            "the hook to hand the row back",
        )
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
    row = _rows(settings)[0]
    assert row.lease_expires_at is None
    assert row.attempts == 0  # the cancelled attempt does not count against retries
