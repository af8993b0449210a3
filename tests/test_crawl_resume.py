"""A crawl killed with SIGKILL, then resumed: no duplicates, no orphans, nothing lost."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from sqlalchemy import func, select

from crawler.run_state import JOURNAL
from storage.db import open_catalog
from storage.models import CrawlRun, Image, Rejection, Sighting
from storage.settings import Settings
from tests.site_fixture import LocalSite, distinct_photos, send_image, serve

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))
IMAGES = 40
MISSING = 3
SERVED_BEFORE_GATE = 10


class Gate:
    """Serves the first few images, then holds every further one until opened."""

    def __init__(self) -> None:
        self.served = 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.open = threading.Event()

    def handler(self, body: bytes):
        def handle(request: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.served += 1
                hold = self.served > SERVED_BEFORE_GATE
            if hold:
                self.holding.set()
                self.open.wait(60)
            send_image(request, body)  # the crawler may have been killed meanwhile

        return handle


def build(site: LocalSite, gate: Gate) -> list[str]:
    paths = []
    tags = []
    for i, body in enumerate(distinct_photos(IMAGES)):
        path = f"/img/cat-{i:02d}.jpg"
        site.handle(path, gate.handler(body))
        paths.append(path)
        tags.append(f'<img src="{path}" alt="cat {i}">')
    for i in range(MISSING):
        paths.append(f"/img/missing-cat-{i}.jpg")
        tags.append(f'<img src="{paths[-1]}" alt="cat">')
    site.page("/", "<html><title>cats</title><body>" + "\n".join(tags) + "</body></html>")
    return paths


def count_sightings(settings: Settings) -> int:
    """A read-only look (the catalog's sessions take SQLite's write lock up front)."""
    path = settings.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT count(*) FROM sightings").fetchone()[0]


def test_killed_crawl_resumes_without_duplicates_orphans_or_losses(
    blob_backend: Settings,
) -> None:
    settings = blob_backend
    gate = Gate()
    catalog = open_catalog(settings)
    with serve(LocalSite()) as site:
        paths = build(site, gate)
        crawl = [DREAMCRAWL, "crawl", "-k", "cat", "--start-url", site.url("/"), "--allow-private"]
        crawl += ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4"]
        first = subprocess.Popen(crawl, start_new_session=True, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not gate.holding.wait(1):
                log = settings.runs_dir / "1" / "crawl.log"
                tail = log.read_text()[-3000:] if log.exists() else ""
                assert first.poll() is None, f"crawl ended early: {tail}"
                assert time.monotonic() < deadline, f"crawl stuck before the gate: {tail}"
            deadline = time.monotonic() + 60
            while count_sightings(settings) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)  # waiting for rows to commit, not for time to pass
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
        finally:
            gate.open.set()
        assert first.returncode == -signal.SIGKILL
        with catalog.session() as session:
            run = session.scalars(select(CrawlRun)).one()
            done_before = set(session.scalars(select(Sighting.url)))
        assert run.status == "running"  # the killed process could not say otherwise
        assert 5 <= len(done_before) <= SERVED_BEFORE_GATE

        # What a kill between writing a blob and committing its rows leaves behind:
        run_dir = settings.runs_dir / str(run.id)
        stray = catalog.blobs.for_run(run_dir / "tmp").put_bytes(b"never committed")
        with open(run_dir / JOURNAL, "a") as journal:
            journal.write(stray + "\n")
        (run_dir / "tmp").mkdir(exist_ok=True)
        (run_dir / "tmp" / "put-half.part").write_bytes(b"half a write")

        resumed = subprocess.run(
            [DREAMCRAWL, "crawl", "--resume", str(run.id), "--json"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert resumed.returncode == 0, resumed.stderr
        hits = dict(site.hits)

    with catalog.session() as session:
        run = session.get(CrawlRun, run.id)
        sightings = session.execute(select(Sighting.url, Sighting.duplicate)).all()
        rejections = session.execute(select(Rejection.url, Rejection.reason)).all()
        images = session.execute(select(func.count()).select_from(Image)).scalar_one()
    assert run.status == "finished" and run.counts["new_images"] == IMAGES
    urls = [u for u, _ in sightings] + [u for u, _ in rejections]
    assert len(urls) == len(set(urls)) == IMAGES + MISSING  # one row per URL
    assert set(urls) == {site.url(p) for p in paths}
    assert images == IMAGES and not any(dup for _, dup in sightings)
    assert {reason for _, reason in rejections} == {"http-404"}
    for url in done_before:  # what the killed crawl finished was not fetched again
        assert hits[url.removeprefix(site.base_url)] == 1
    assert not catalog.blobs.exists(stray)
    assert not (run_dir / "tmp").exists() and not (run_dir / JOURNAL).exists()
    check = subprocess.run([DREAMCRAWL, "catalog", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_resume_of_a_live_crawl_is_refused_while_any_of_its_processes_lives(
    settings: Settings,
) -> None:
    """The run folder's lock is held by the command and its crawler process: a --resume
    is one line, exit 2, while either lives (even with the command killed), and works
    once both are gone."""
    gate = Gate()
    with serve(LocalSite()) as site:
        build(site, gate)
        crawl = [DREAMCRAWL, "crawl", "-k", "cat", "--start-url", site.url("/"), "--allow-private"]
        first = subprocess.Popen(crawl, start_new_session=True, stderr=subprocess.DEVNULL)
        resume = [DREAMCRAWL, "crawl", "--resume", "1"]
        try:
            assert gate.holding.wait(120), "the crawl never reached the gate"
            while_alive = subprocess.run(resume, capture_output=True, text=True, timeout=120)
            first.send_signal(signal.SIGKILL)  # the command only: its crawler lives on
            first.wait(30)
            orphaned = subprocess.run(resume, capture_output=True, text=True, timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
            gate.open.set()
        for refused in (while_alive, orphaned):
            assert refused.returncode == 2, refused.stderr
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1 and "still running" in lines[0], refused.stderr
        finished = subprocess.run(resume, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr
