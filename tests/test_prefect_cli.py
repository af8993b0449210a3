"""Prefect's own CLI works against a server running from our lock file.

docs/operating.md tells operators to use ``prefect deployment ls``, ``prefect flow-run ls``,
``prefect artifact ls`` and ``prefect flow-run logs``. With fastapi 0.151+ the server
rejected the ``"limit": null`` its own client sends (422); this test runs each command in a
subprocess against the session's real Prefect server after a real crawl flow run, and
checks that the listing shows that run, its deployment, its artifact and its logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.demo_site import serve_demo_site
from storage.settings import Settings
from tests.helpers import demo_crawl

pytestmark = pytest.mark.usefixtures("prefect_server")


def prefect_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``prefect`` command of this venv against the test server."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "300"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prefect_listings_show_our_runs(settings: Settings) -> None:
    from flows.flows import crawl_flow

    with serve_demo_site() as base_url:
        state = crawl_flow(**demo_crawl(base_url, max_images=3), return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = str(state.state_details.flow_run_id)
    flow_run_name = _flow_run_name(flow_run_id)
    crawl_flow.to_deployment(name="cli-listing-check").apply()

    deployments = prefect_cli("deployment", "ls")
    assert deployments.returncode == 0, deployments.stderr + deployments.stdout
    assert "crawl/cli-listing-check" in deployments.stdout

    runs = prefect_cli("flow-run", "ls")
    assert runs.returncode == 0, runs.stderr + runs.stdout
    assert flow_run_id in runs.stdout
    assert flow_run_name in runs.stdout

    artifacts = prefect_cli("artifact", "ls")
    assert artifacts.returncode == 0, artifacts.stderr + artifacts.stdout
    assert "crawl-counts" in artifacts.stdout

    logs = prefect_cli("flow-run", "logs", flow_run_id)
    assert logs.returncode == 0, logs.stderr + logs.stdout
    assert "Finished in state Completed" in logs.stdout


def _flow_run_name(flow_run_id: str) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).name
