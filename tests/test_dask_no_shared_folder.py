"""``stylize --dask-address`` against a real ``dask scheduler`` and two ``dask worker``
processes, each with its own empty DREAMCRAWL_HOME, seeing only PostgreSQL and S3."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image as PILImage

from storage.db import dispose_engines, open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from tests.conftest import REPO
from tests.helpers import add_image, photo_bytes
from tests.pg_server import _free_port
from tests.s3_server import S3Server
from tests.test_no_shared_folder import machine_env, process, shared_services

DASK = str(Path(sys.executable).parent / "dask")
pytestmark = pytest.mark.timeout(600)


def test_stylize_on_remote_dask_workers_that_share_no_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_admin_url: str,
    s3_server: S3Server,
    converted_weights: Path,
) -> None:
    from distributed import Client

    shared = shared_services("dask_no_shared_folder", pg_admin_url, s3_server, monkeypatch)
    homes = {name: tmp_path / name for name in ("flow", "worker-1", "worker-2")}
    for home in homes.values():
        home.mkdir()
    weights = {"DREAMCRAWL_WEIGHTS": str(converted_weights)}
    flow_env = machine_env(homes["flow"], shared, **weights)
    catalog = open_catalog(Settings.from_env(flow_env))
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        add_image(catalog, photo_bytes(name, size=128))

    address = f"tcp://127.0.0.1:{_free_port()}"
    scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]]
    scheduler += ["--no-dashboard"]
    with ExitStack() as stack:
        stack.enter_context(process(scheduler, flow_env, tmp_path / "scheduler.log"))
        pids = set()
        for name in ("worker-1", "worker-2"):
            env = machine_env(homes[name], shared, **weights)
            command = [DASK, "worker", address, "--nthreads", "1", "--no-nanny"]
            command += ["--no-dashboard", "--local-directory", str(homes[name] / "dask")]
            pids.add(stack.enter_context(process(command, env, tmp_path / f"{name}.log")))
        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
        stylize = ["stylize", "--preset", "fast", "--steps", "1", "--octaves", "1"]
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *stylize, "--dask-address", address, "--json"],
            cwd=REPO,
            env={**flow_env, "PREFECT_HOME": str(homes["flow"] / "prefect")},
            capture_output=True,
            text=True,
            timeout=400,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout)["outcomes"]
    assert [o["status"] for o in outcomes] == ["done"] * 4
    assert {o["pid"] for o in outcomes} == pids  # both workers dreamed, nobody else

    with catalog.session() as session:
        rows = session.scalars(sa.select(Stylization)).all()
    assert {r.status for r in rows} == {StylizationStatus.DONE}
    for row in rows:  # every output reads back through S3
        assert row.output_blob_key is not None
        with catalog.blobs.open(row.output_blob_key) as fh, PILImage.open(fh) as image:
            assert image.size[0] > 0
    dispose_engines()
    for home in homes.values():  # the blobs are in S3, nowhere on the "machines"
        assert not (home / "objects").exists()
