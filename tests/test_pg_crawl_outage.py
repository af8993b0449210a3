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
from tests.helpers import REPO, dreamcrawl
from tests.pg_server import PgCluster, create_database
from tests.site_fixture import LocalSite, serve
from tests.write_failures import (
    IMAGES,
    Trigger,
    assert_every_url_once,
    build,
    crawl_args,
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


def start_crawl(site: LocalSite, *settings: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pipeline.cli", *crawl_args(site, *settings)]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def test_a_short_outage_is_retried_and_the_crawl_finishes(cluster: PgCluster) -> None:
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    log = settings.runs_dir / "1" / "crawl.log"
    with serve(LocalSite()) as site:
        urls = build(site, Trigger(AT, cluster.stop))
        crawl = start_crawl(site, "DREAMCRAWL_WRITE_RETRY_SECONDS=120")
        try:
            # The writer met the outage, and is retrying: bring the server back.
            wait_for_log(log, "the catalog is out of reach", crawl)
        finally:
            cluster.start()
        out, err = crawl.communicate(timeout=180)
    assert crawl.returncode == 0, out + err
    dispose_engines()
    run = assert_every_url_once(catalog, 1, urls)
    assert run.error is None


def test_a_long_outage_interrupts_the_crawl_and_resume_finishes_it(cluster: PgCluster) -> None:
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    with serve(LocalSite()) as site:
        urls = build(site, Trigger(AT, cluster.stop))
        crawl = start_crawl(site, "DREAMCRAWL_WRITE_RETRY_SECONDS=2")
        try:
            out, err = crawl.communicate(timeout=180)
        finally:
            cluster.start()  # only once the crawl has given up
        # Still down when the crawl stopped: one line says so, and how to go on.
        assert crawl.returncode != 0, out + err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "catalog" in lines[0] and "--resume 1" in lines[0], err
        dispose_engines()
        with catalog.read_session() as session:
            run = session.get(CrawlRun, 1)
            recorded = set(session.scalars(select(Sighting.url)))
        assert run is not None and run.status in ("running", "interrupted")
        assert len(recorded) < len(urls)  # the outage did stop it midway

        resumed = dreamcrawl("crawl", "--resume", "1", timeout=180)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_every_url_once(catalog, 1, urls)


def test_an_outage_that_ends_while_the_crawl_stops_leaves_it_interrupted(
    cluster: PgCluster,
) -> None:
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    log = settings.runs_dir / "1" / "crawl.log"
    with serve(LocalSite()) as site:
        urls = build(site, Trigger(AT, cluster.stop))
        crawl = start_crawl(site, "DREAMCRAWL_WRITE_RETRY_SECONDS=15")
        try:
            wait_for_log(log, "stopping the crawl", crawl)  # the writer gave up
        finally:
            cluster.start()  # back in time for the run's end to be recorded
        out, err = crawl.communicate(timeout=180)
        assert crawl.returncode == 1, out + err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "catalog-unavailable" in lines[0], err
        dispose_engines()
        with catalog.read_session() as session:
            run = session.get(CrawlRun, 1)
        assert run is not None and run.status == "interrupted"
        assert "catalog-unavailable" in (run.error or "")

        resumed = dreamcrawl("crawl", "--resume", "1", timeout=180)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_every_url_once(catalog, 1, urls)
