"""The crawl's progress reaches its caller while the crawl runs, not only at the end.

The site's second photo is held back until the caller has received a progress report
counting the first one: if reports came only when the crawl ended, the photo would be
held until its deadline and the test would fail.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from crawler.api import run_crawl
from storage.settings import Settings
from tests.helpers import photo_bytes
from tests.site_fixture import LocalSite, serve

HOLD_S = 120.0  # how long the held photo waits at most for a report


def test_progress_is_reported_while_the_crawl_runs(settings: Settings) -> None:
    reported = threading.Event()
    reports: list[dict[str, Any]] = []
    released_by_report: list[bool] = []
    held = photo_bytes("coffee", size=160)

    def on_progress(counts: dict[str, Any]) -> None:
        reports.append(counts)
        if counts["images"] >= 1:
            reported.set()

    def held_photo(request: BaseHTTPRequestHandler) -> None:
        released_by_report.append(reported.wait(HOLD_S))
        request.send_response(200)
        request.send_header("Content-Type", "image/jpeg")
        request.send_header("Content-Length", str(len(held)))
        request.end_headers()
        request.wfile.write(held)

    site = LocalSite()
    site.file("/a.jpg", photo_bytes("chelsea", size=160), "image/jpeg")
    site.handle("/b.jpg", held_photo)
    site.page(
        "/",
        '<title>cat and coffee</title><img src="/a.jpg" alt="a cat">'
        '<img src="/b.jpg" alt="a cat with coffee">',
    )
    with serve(site):
        result = run_crawl(
            keywords=["cat"],
            start_urls=[site.url("/")],
            allow_private=True,
            overrides={"DREAMCRAWL_PROGRESS_INTERVAL": "0.2"},
            on_progress=on_progress,
        )
    assert result.status == "finished", result.error
    assert released_by_report == [True]  # a report counted the first photo mid-crawl
    assert reports[-1]["images"] == 2 and reports[-1]["pages"] == 1
    assert result.counts["new_images"] == 2
