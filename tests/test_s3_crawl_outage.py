"""The S3 server dies in the middle of a crawl: nothing is half recorded, and
``--resume`` finishes the crawl once the server is back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from storage.db import open_catalog
from storage.models import CrawlRun, Image, Rejection
from storage.settings import Settings
from tests.s3_server import SeaweedFS
from tests.site_fixture import LocalSite, serve
from tests.test_crawl_resume import IMAGES, Gate, build, count_sightings

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))


def test_dead_s3_stops_the_crawl_cleanly_and_resume_finishes_it(own_s3: SeaweedFS) -> None:
    weed = own_s3
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    gate = Gate()
    with serve(LocalSite()) as site:
        build(site, gate)
        crawl = [DREAMCRAWL, "crawl", "-k", "cat", "--start-url", site.url("/")]
        crawl += ["--allow-private", "-s", "AUTOTHROTTLE_ENABLED=False"]
        first = subprocess.Popen(crawl, stderr=subprocess.PIPE, text=True)
        try:
            assert gate.holding.wait(120), "the crawl never reached the gate"
            deadline = time.monotonic() + 60
            while count_sightings(settings) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)  # waiting for rows to commit, not for time to pass
            weed.kill()
        finally:
            gate.open.set()
        _, stderr = first.communicate(timeout=180)
        assert first.returncode != 0, stderr
        with catalog.session() as session:
            run = session.scalars(select(CrawlRun)).one()
            keys = list(session.scalars(select(Image.blob_key)))
            errors = session.scalars(select(Rejection.url).where(Rejection.reason == "error")).all()
        assert run.status == "interrupted"
        assert "blob-store-unavailable" in (run.error or "")
        assert errors == []  # no URL was blamed for the store's outage
        assert 5 <= len(keys) < IMAGES

        weed.start()  # the same server, the same data, back again
        catalog = open_catalog(settings)
        assert all(catalog.blobs.exists(key) for key in keys)  # every row has its blob
        resumed = subprocess.run(
            [DREAMCRAWL, "crawl", "--resume", str(run.id), "--json"],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ},
        )
        assert resumed.returncode == 0, resumed.stderr
    with catalog.session() as session:
        run = session.get(CrawlRun, run.id)
        images = session.execute(select(func.count()).select_from(Image)).scalar_one()
    assert run is not None and run.status == "finished"
    assert images == IMAGES
    check = subprocess.run([DREAMCRAWL, "catalog", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
