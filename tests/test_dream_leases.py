"""Dream rows held by dead workers come back, with real processes and PostgreSQL.

The exact sequence that left a row ``running`` for ever: worker A claims the row while
``dreamcrawl stylize`` B waits to claim it, so B's outcome is ``skipped``; A is killed;
its lease expires; a rerun C must claim the row and dream it. Before the fix Prefect had
cached B's ``skipped`` under the dream's cache key and handed it to every rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.dreaming import plan_jobs
from storage import jobs
from storage.db import dispose_engines, open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from stylize.params import DreamParams
from tests.helpers import add_image, photo_bytes
from tests.pg_server import create_database

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))

# Worker A: claims the row with the real claim code, holds the transaction (and the row
# lock) until told to commit, then keeps "dreaming" until it is killed.
WORKER_A = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from sqlalchemy import update
    from storage import jobs
    from storage.db import open_catalog
    from storage.models import Stylization, utcnow
    from storage.settings import Settings

    catalog = open_catalog(Settings.from_env())
    sid, lease = int(sys.argv[1]), timedelta(seconds=float(sys.argv[2]))
    with catalog.session() as session:
        assert jobs.claim(session, sid, lease=lease)
        print("claimed", flush=True)
        sys.stdin.readline()
        # the lease runs from the commit on (the claim waited for B to arrive)
        ends = update(Stylization).where(Stylization.id == sid)
        session.execute(ends.values(lease_expires_at=utcnow() + lease))
    print("committed", flush=True)
    sys.stdin.readline()
    """
)


def wait_for(condition: Callable[[], bool], what: str, attempts: int = 600) -> None:
    """Poll ``condition`` (each poll is a database round trip) until it holds."""
    engine_wait = sa.create_engine(os.environ["DREAMCRAWL_DB_URL"])
    try:
        for _ in range(attempts):
            if condition():
                return
            with engine_wait.connect() as connection:  # ~0.2 s between polls, no sleep
                connection.execute(sa.text("SELECT pg_sleep(0.2)"))
    finally:
        engine_wait.dispose()
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def pg_dream_env(
    settings: Settings,
    pg_admin_url: str,
    converted_weights: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> dict[str, str]:
    url = create_database(pg_admin_url, "t_lease_" + request.node.name[-20:].lower())
    monkeypatch.setenv("DREAMCRAWL_DB_URL", url)
    monkeypatch.setenv("DREAMCRAWL_WEIGHTS", str(converted_weights))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # one result store for every run
    return env


def stylize(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    command = [DREAMCRAWL, "stylize", "--preset", "fast", "--steps", "1", "--json", *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def outcomes(process: subprocess.Popen[str]) -> list[dict]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out)["outcomes"]


def row(catalog, stylization_id: int) -> Stylization:
    with catalog.session() as session:
        found = session.get(Stylization, stylization_id)
        session.expunge(found)
        return found


def test_a_skipped_outcome_is_never_cached_and_a_rerun_claims_the_row(
    settings: Settings, pg_dream_env: dict[str, str]
) -> None:
    catalog = open_catalog(Settings.from_env())
    add_image(catalog, photo_bytes("chelsea", size=160))
    (job,) = plan_jobs(Settings.from_env(), DreamParams.parse(presets=["fast"], steps=1)).jobs
    sid = job.stylization_id
    dispose_engines()

    worker_a = subprocess.Popen(
        [sys.executable, "-c", WORKER_A, str(sid), "4"],
        env=pg_dream_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert worker_a.stdout.readline().strip() == "claimed"
        b = stylize(pg_dream_env)

        def b_waits_for_the_row() -> bool:
            with sa.create_engine(os.environ["DREAMCRAWL_DB_URL"]).connect() as connection:
                waiting = connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query ILIKE 'UPDATE stylizations%'"
                    )
                ).scalar()
            return bool(waiting)

        try:
            wait_for(b_waits_for_the_row, "stylize B to wait for worker A's row")
        except BaseException:
            b.kill()
            print(b.communicate())  # what B did instead, for the report
            raise
        worker_a.stdin.write("commit\n")
        worker_a.stdin.flush()
        assert worker_a.stdout.readline().strip() == "committed"
        assert [o["status"] for o in outcomes(b)] == ["skipped"]
    finally:
        worker_a.send_signal(signal.SIGKILL)  # A dies mid-dream
        worker_a.wait()
    held = row(catalog, sid)
    assert held.status == StylizationStatus.RUNNING

    def lease_over() -> bool:
        with sa.create_engine(os.environ["DREAMCRAWL_DB_URL"]).connect() as connection:
            return bool(
                connection.execute(
                    sa.text("SELECT lease_expires_at < now() AT TIME ZONE 'UTC' "
                            "FROM stylizations WHERE id = :id"), {"id": sid}
                ).scalar()
            )  # fmt: skip

    wait_for(lease_over, "worker A's lease to expire")
    rerun = outcomes(stylize(pg_dream_env))
    assert [(o["id"], o["status"]) for o in rerun] == [(sid, "done")]
    assert row(catalog, sid).status == StylizationStatus.DONE


def test_a_heartbeat_renews_a_short_lease_and_a_killed_worker_frees_the_row_soon(
    settings: Settings, pg_dream_env: dict[str, str]
) -> None:
    """With DREAMCRAWL_DREAM_LEASE_S=3 a live worker keeps its row past 3 s (the lease is
    renewed), and once it is killed the row is claimable again within the lease."""
    catalog = open_catalog(Settings.from_env())
    add_image(catalog, photo_bytes("chelsea", size=160))
    dispose_engines()
    env = {**pg_dream_env, "DREAMCRAWL_DREAM_LEASE_S": "3"}
    worker = subprocess.Popen(
        [DREAMCRAWL, "stylize", "--preset", "classic", "--steps", "400"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    engine = sa.create_engine(os.environ["DREAMCRAWL_DB_URL"])
    leases: list = []

    def lease() -> tuple[str | None, object]:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT status, lease_expires_at FROM stylizations")
            ).first()
        return (found[0], found[1]) if found else (None, None)

    def renewed() -> bool:
        status, expires = lease()
        if status == "running":
            leases.append(expires)
        return len(set(leases)) >= 3  # the claim, then two renewals

    try:
        wait_for(renewed, "the worker's lease to be renewed twice")
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    def claimable() -> bool:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    sa.text("SELECT lease_expires_at < now() AT TIME ZONE 'UTC' "
                            "FROM stylizations")
                ).scalar()
            )  # fmt: skip

    wait_for(claimable, "the dead worker's lease to run out", attempts=100)  # ≤ ~20 s
    engine.dispose()
    with catalog.session() as session:  # another worker takes it over
        sid = session.scalars(sa.select(Stylization.id)).one()
        assert jobs.claim(session, sid)
