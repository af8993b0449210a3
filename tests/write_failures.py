"""Shared by the tests that take a store away from a running crawl (the catalog's
PostgreSQL server, the blob or catalog disk): a site that triggers the failure when it
has served a given number of images, and the checks that nothing was lost."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from sqlalchemy import func, select

from storage.db import Catalog, dispose_engines, open_catalog
from storage.models import CrawlRun, Image, Rejection, Sighting
from storage.settings import Settings
from tests.helpers import dreamcrawl
from tests.site_fixture import LocalSite, distinct_photos, send_image

IMAGES = 30
MISSING = 3
SMALL = 10


class Trigger:
    """Serves images; runs ``action`` (once, before answering) on the ``at``-th request,
    while the other requests wait for it: every image served after it meets the failure."""

    def __init__(self, at: int, action: Callable[[], None]) -> None:
        self.at = at
        self.action = action
        self.served = 0
        self.lock = threading.Lock()
        self.fired = threading.Event()

    def handler(self, body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
        def handle(request: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.served += 1
                if self.served == self.at:
                    self.action()
                    self.fired.set()
            send_image(request, body)

        return handle


def build(
    site: LocalSite,
    trigger: Trigger | None = None,
    images: int = IMAGES,
    large: Callable[[int], bytes] | None = None,
) -> set[str]:
    """A page of ``images`` distinct photos and MISSING broken links; every URL on it.
    With ``large``, the images past the first SMALL are ``large(i)`` instead."""
    paths = []
    for i, body in enumerate(distinct_photos(images)):
        path = f"/img/cat-{i:02d}.jpg"
        if large is not None and i >= SMALL:
            body = large(i)
        if trigger is None:
            site.file(path, body, "image/jpeg")
        else:
            site.handle(path, trigger.handler(body))
        paths.append(path)
    paths += [f"/img/missing-cat-{i}.jpg" for i in range(MISSING)]
    tags = [f'<img src="{path}" alt="cat {i}">' for i, path in enumerate(paths)]
    site.page("/", "<html><title>cats</title><body>" + "\n".join(tags) + "</body></html>")
    return {site.url(p) for p in paths}


def crawl_args(site: LocalSite, *settings: str) -> list[str]:
    args = ["crawl", "-k", "cat", "--start-url", site.url("/"), "--allow-private"]
    args += ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4"]
    args += ["-s", "DREAMCRAWL_LABELS=false"]  # no labeller: its warning is not ours
    for setting in settings:
        args += ["-s", setting]
    return args


def wait_for_log(log: Path, text: str, process: subprocess.Popen[str], limit: float = 120) -> None:
    """Wait until the crawl's log says ``text`` (an event, not a length of time)."""
    deadline = time.monotonic() + limit
    while not (log.exists() and text in log.read_text(errors="replace")):
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        assert process.poll() is None, f"the crawl ended before logging {text!r}: {tail}"
        assert time.monotonic() < deadline, f"the crawl never logged {text!r}: {tail}"
        time.sleep(0.05)


def assert_every_url_once(catalog: Catalog, run_id: int, urls: set[str]) -> CrawlRun:
    """The run finished, with exactly one row per URL, and `catalog check` is clean."""
    with catalog.read_session() as session:
        run = session.get(CrawlRun, run_id)
        sightings = list(session.scalars(select(Sighting.url)))
        rejections = session.execute(select(Rejection.url, Rejection.reason)).all()
        images = session.execute(select(func.count()).select_from(Image)).scalar_one()
    assert run is not None and run.status == "finished", run and (run.status, run.error)
    found = sightings + [url for url, _ in rejections]
    assert sorted(found) == sorted(set(found)), "a URL has two rows"
    assert set(found) == urls, f"no row for {sorted(urls - set(found))}"
    assert {reason for _, reason in rejections} == {"http-404"}  # no URL blamed
    assert images == len(urls) - MISSING
    check = dreamcrawl("catalog", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    return run


def resume_and_check(urls: set[str]) -> None:
    """``dreamcrawl crawl --resume 1`` finishes the run: see :func:`assert_every_url_once`."""
    resumed = dreamcrawl("crawl", "--resume", "1", timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    dispose_engines()
    assert_every_url_once(open_catalog(Settings.from_env()), 1, urls)
