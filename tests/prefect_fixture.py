"""Prefect servers for the tests.

- ``prefect_server``: one in-process test server for the whole session (its first start
  runs migrations); flows called in the test process report to it.
- ``prefect_api``: a real ``prefect server start`` in its own process, for tests that
  need what the test server lacks (the scheduler) or that drive other processes
  (``dreamcrawl serve``, workers) through the API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg_server import _free_port

DEADLINE = 240.0  # seconds to wait for a server, a schedule or a run


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="dreamcrawl-prefect-")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "2",
    }
    with open(tmp_path / "prefect-server.log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, "server")
        yield {"PREFECT_API_URL": api, "PREFECT_HOME": env["PREFECT_HOME"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``condition`` until it holds; return what it gave; fail after ``deadline`` s."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            value = condition()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for the {what}")
