"""Killing a command leaves no temporary Prefect server behind (flows/temporary_server.py).

A real ``dreamcrawl stylize`` without ``PREFECT_API_URL`` starts Prefect's temporary
server; once its flow runs, the command is killed with SIGKILL (no atexit hook runs).
The server must exit too, and with it the last holder of the command's stdout and
stderr: reading them reaches end-of-file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from storage.db import dispose_engines, open_catalog
from storage.settings import Settings
from tests.helpers import add_image, photo_bytes


def _server_of(command: psutil.Process) -> psutil.Process:
    servers = [p for p in command.children(recursive=True) if "uvicorn" in p.cmdline()]
    assert len(servers) == 1, [p.cmdline() for p in command.children(recursive=True)]
    return servers[0]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_temporary_server_dies_with_a_killed_command(
    tmp_path: Path, converted_weights: Path, how: signal.Signals
) -> None:
    home = tmp_path / "home"
    catalog = open_catalog(Settings.from_env({"DREAMCRAWL_HOME": str(home)}))
    add_image(catalog, photo_bytes("chelsea", size=200))
    dispose_engines()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        DREAMCRAWL_HOME=str(home),
        DREAMCRAWL_WEIGHTS=str(converted_weights),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_LOGGING_LEVEL="INFO",
    )
    dreamcrawl = Path(sys.executable).with_name("dreamcrawl")
    command = subprocess.Popen(
        [str(dreamcrawl), "stylize", "--preset", "classic"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    server = None
    try:
        assert command.stdout is not None
        for line in command.stdout:  # the flow runs: the server answers
            if "Beginning flow run" in line:
                break
        else:
            pytest.fail("the flow never started")
        server = _server_of(psutil.Process(command.pid))
        command.send_signal(how)
        command.communicate(timeout=120)  # end-of-file: nobody holds the pipe
        assert command.returncode == -how
        gone, alive = psutil.wait_procs([server], timeout=60)
        assert server in gone and not alive
    finally:
        if command.poll() is None:
            command.kill()
        if server is not None and server.is_running():
            server.kill()
