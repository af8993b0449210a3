"""The whole pipeline with no shared folder: a Prefect server, PostgreSQL, SeaweedFS, and
two Prefect workers (crawl pool, dream pool) as separate processes, each with its own
empty DREAMCRAWL_HOME. The pipeline deployment is triggered through the Prefect API;
the crawl runs on the crawl worker, the dreams on the dream worker; a third process
then checks the catalog, reads every output back through S3, and follows the lineage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipeline.demo_site import serve_demo_site
from storage.db import dispose_engines
from storage.models import CrawlRun, Stylization, StylizationStatus
from tests.conftest import REPO
from tests.pg_server import create_database
from tests.s3_fixture import BUCKET, prefix_for, use_s3
from tests.s3_server import S3Server

BIN = Path(sys.executable).parent
DEADLINE = 300.0  # seconds for the flow runs to finish, once triggered
pytestmark = pytest.mark.timeout(600)


def machine_env(home: Path, shared: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of one 'machine': its own empty home, the shared services only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMCRAWL_", "PREFECT_"))}
    env.update(shared, DREAMCRAWL_HOME=str(home), **extra)
    env.update(PREFECT_HOME=str(home / "prefect"), DO_NOT_TRACK="1")
    return env


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[int]:
    """Run ``command`` in its own session, in its machine's home; yield its pid; stop it
    at the end."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=env["DREAMCRAWL_HOME"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker(pool: str, env: dict[str, str], log: Path) -> AbstractContextManager[int]:
    """``prefect worker start`` for ``pool``, polling every second."""
    command = [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"]
    env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    return process(command, env, log)


def shared_services(
    name: str, pg_admin_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A database and an S3 prefix of the test's own: the variables every 'machine' gets."""
    db_url = create_database(pg_admin_url, f"t_{name}")
    url = use_s3(s3_server, prefix_for(name), monkeypatch)
    return {"DREAMCRAWL_DB_URL": db_url, "DREAMCRAWL_BLOBS": url, **s3_server.env()}


def wait_for_run(api: str, run_id: str, logs: list[Path]) -> dict:
    """Poll the flow run until it is final; fail with the workers' logs after DEADLINE."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(1)  # polling a remote state, not waiting for time to pass
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"flow run {run_id} did not finish in {DEADLINE:g} s\n{tails}")


READ_BACK = textwrap.dedent(
    """
    import json
    from PIL import Image
    from sqlalchemy import select
    from storage.db import open_catalog
    from storage.models import Stylization
    from storage.settings import Settings

    catalog = open_catalog(Settings.from_env())
    sizes = {}
    with catalog.session() as session:
        keys = session.scalars(select(Stylization.output_blob_key)).all()
    for key in keys:
        with catalog.blobs.open(key) as fh, Image.open(fh) as image:
            image.load()
            sizes[key] = list(image.size)
    print(json.dumps({"store": catalog.blobs.describe(), "sizes": sizes}))
    """
)


def test_pipeline_runs_on_two_workers_that_share_no_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_admin_url: str,
    s3_server: S3Server,
    converted_weights: Path,
    prefect_api: dict[str, str],
) -> None:
    shared = shared_services("no_shared_folder", pg_admin_url, s3_server, monkeypatch)
    shared["PREFECT_API_URL"] = prefect_api["PREFECT_API_URL"]
    db_url = shared["DREAMCRAWL_DB_URL"]
    homes = {name: tmp_path / name for name in ("deployer", "crawler", "dreamer", "checker")}
    for home in homes.values():
        home.mkdir()
    api = prefect_api["PREFECT_API_URL"]

    deployed = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "deploy"],
        cwd=REPO,
        env=machine_env(homes["deployer"], shared),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "pipeline/pipeline\tpool crawl" in deployed.stdout.splitlines()
    assert "stylize/stylize\tpool dream" in deployed.stdout.splitlines()

    crawl_env = machine_env(homes["crawler"], shared)
    dream_env = machine_env(homes["dreamer"], shared, DREAMCRAWL_WEIGHTS=str(converted_weights))
    logs = [tmp_path / "crawl-worker.log", tmp_path / "dream-worker.log"]
    with (
        serve_demo_site() as site,
        worker("crawl", crawl_env, logs[0]),
        worker("dream", dream_env, logs[1]),
    ):
        deployment = httpx.get(f"{api}/deployments/name/pipeline/pipeline", timeout=10).json()
        parameters = {
            "keywords": ["cat"],
            "start_urls": [site],
            "allow_private": True,
            "max_images": 2,
            "presets": ["fast"],
            "steps": 1,
            "octaves": 1,
        }
        created = httpx.post(
            f"{api}/deployments/{deployment['id']}/create_flow_run",
            json={"parameters": parameters},
            timeout=10,
        )
        created.raise_for_status()
        pipeline_run = wait_for_run(api, created.json()["id"], logs)
    assert pipeline_run["state_type"] == "COMPLETED", pipeline_run["state"]
    assert pipeline_run["work_pool_name"] == "crawl"

    # From a third process with its own empty home: the catalog agrees with S3...
    checker = machine_env(homes["checker"], shared)
    check = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "catalog", "check"],
        cwd=REPO,
        env=checker,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # ...and every output reads back through S3.
    read = subprocess.run(
        [sys.executable, "-c", READ_BACK],
        cwd=REPO,
        env=checker,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    outputs = json.loads(read.stdout)
    assert outputs["store"].startswith(f"s3://{BUCKET}/")
    assert outputs["sizes"] and all(w > 0 and h > 0 for w, h in outputs["sizes"].values())

    # The lineage names the flow runs: the crawl the pipeline's, the dreams the dream run
    # it started on the dream pool.
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        crawl_runs = conn.execute(sa.select(CrawlRun.id, CrawlRun.prefect_flow_run_id)).all()
        dreams = conn.execute(sa.select(Stylization.status, Stylization.prefect_flow_run_id)).all()
    engine.dispose()
    dispose_engines()
    assert [run for _, run in crawl_runs] == [pipeline_run["id"]]
    assert dreams and {status for status, _ in dreams} == {StylizationStatus.DONE}
    (dream_run_id,) = {run for _, run in dreams}
    dream_run = httpx.get(f"{api}/flow_runs/{dream_run_id}", timeout=10).json()
    assert dream_run["work_pool_name"] == "dream"
    parent = httpx.get(f"{api}/task_runs/{dream_run['parent_task_run_id']}", timeout=10).json()
    assert parent["flow_run_id"] == pipeline_run["id"]

    # Each worker kept only its own scratch: the crawl's run folder is on the crawl
    # machine, and no machine holds a blob.
    (crawl_run_id,) = [run_id for run_id, _ in crawl_runs]
    assert (homes["crawler"] / "runs" / str(crawl_run_id)).is_dir()
    assert not (homes["dreamer"] / "runs" / str(crawl_run_id)).exists()
    for home in homes.values():
        assert not (home / "objects").exists()
