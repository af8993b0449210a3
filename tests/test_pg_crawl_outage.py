"""The catalog's PostgreSQL server stops in the middle of a crawl (``pg_ctl stop -m
fast``, as in a crash or a restart), when the site has served a third of its images.

- Back within the writer's retries: the crawl finishes normally, every URL recorded.
- Gone for longer: the crawl stops ``interrupted`` with one line and a non-zero exit,
  no URL is dropped or blamed, and ``--resume`` finishes it once the server is back.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import dispose_engines, open_catalog
from storage.models import CrawlRun, Sighting
from storage.settings import Settings
from tests.helpers import REPO
from tests.pg_server import PgCluster, create_database
from tests.site_fixture import LocalSite, serve
from tests.write_failures import (
    IMAGES,
    Trigger,
    assert_every_url_once,
    build,
    crawl_args,
    resume_and_check,
    wait_for_log,
)

AT = IMAGES // 3  # the image whose request takes the server away


@pytest.fixture
def cluster(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[PgCluster]:
    """A PostgreSQL cluster of this test's own (stopping the suite's would hurt others)."""
    pg = PgCluster(Path(tempfile.mkdtemp(prefix="dreamcrawl-pg-outage-"))).init()
    pg.start()
    try:
        monkeypatch.setenv("DREAMCRAWL_DB_URL", create_database(pg.url, "outage"))
        yield pg
    finally:
        dispose_engines()
        pg.remove()


def crawl_through_outage(
    site: LocalSite, cluster: PgCluster, retry_seconds: int, back_when: str | None
) -> tuple[int, str]:
    """Crawl while the server stops at image AT; start it again once the crawl's log
    says ``back_when`` (None: once the crawl has ended). Its exit status and stderr."""
    command = [sys.executable, "-m", "pipeline.cli"]
    command += crawl_args(site, f"DREAMCRAWL_WRITE_RETRY_SECONDS={retry_seconds}")
    crawl = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        if back_when is not None:
            wait_for_log(Settings.from_env().runs_dir / "1" / "crawl.log", back_when, crawl)
            cluster.start()
        out, err = crawl.communicate(timeout=180)
    finally:
        if crawl.poll() is None:
            crawl.kill()
        if back_when is None:
            cluster.start()
    dispose_engines()
    return crawl.returncode, out + err if crawl.returncode == 0 else err


def test_a_short_outage_is_retried_and_the_crawl_finishes(cluster: PgCluster) -> None:
    catalog = open_catalog(Settings.from_env())
    with serve(LocalSite()) as site:
        urls = build(site, Trigger(AT, cluster.stop))
        # The writer met the outage and is retrying: bring the server back.
        code, err = crawl_through_outage(site, cluster, 120, "the catalog is out of reach")
    assert code == 0, err
    run = assert_every_url_once(catalog, 1, urls)
    assert run.error is None


def test_a_long_outage_interrupts_the_crawl_and_resume_finishes_it(cluster: PgCluster) -> None:
    catalog = open_catalog(Settings.from_env())
    with serve(LocalSite()) as site:
        urls = build(site, Trigger(AT, cluster.stop))
        code, err = crawl_through_outage(site, cluster, 2, None)  # back after the crawl
        # Still down when the crawl stopped: one line says so, and how to go on.
        assert code != 0, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "catalog" in lines[0] and "--resume 1" in lines[0], err
        with catalog.read_session() as session:
            run = session.get(CrawlRun, 1)
            recorded = set(session.scalars(select(Sighting.url)))
        assert run is not None and run.status == "running"  # its end could not be recorded
        assert len(recorded) < len(urls)  # the outage did stop it midway
        resume_and_check(urls)


def test_an_outage_that_ends_while_the_crawl_stops_leaves_it_interrupted(
    cluster: PgCluster,
) -> None:
    catalog = open_catalog(Settings.from_env())
    with serve(LocalSite()) as site:
        urls = build(site, Trigger(AT, cluster.stop))
        # Back once the writer gave up: in time for the run's end to be recorded.
        code, err = crawl_through_outage(site, cluster, 15, "stopping the crawl")
        assert code == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "catalog-unavailable" in lines[0], err
        with catalog.read_session() as session:
            run = session.get(CrawlRun, 1)
        assert run is not None and run.status == "interrupted"
        assert "catalog-unavailable" in (run.error or "")
        resume_and_check(urls)
