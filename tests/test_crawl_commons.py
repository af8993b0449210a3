"""The Wikimedia Commons search source against a local stand-in for its API.

The stand-in answers like the MediaWiki API (``action=query&generator=search`` with
``prop=imageinfo``, formatversion 2, continuation by ``gsroffset``); the images it lists
are served by the same local server.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy import select

from crawler import run_crawl
from storage.db import open_catalog
from storage.models import Rejection, Sighting
from storage.settings import Settings
from tests.site_fixture import LocalSite, jpeg, serve

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))


def info(url: str, mime: str, width: int, height: int, **meta: str) -> dict:
    return {
        "url": url,
        "descriptionurl": url.replace("/media/", "/wiki/File:"),
        "mime": mime,
        "width": width,
        "height": height,
        "size": 1000,
        "extmetadata": {k: {"value": v, "source": "commons-desc-page"} for k, v in meta.items()},
    }


def api(site: LocalSite):
    first = [
        ("Chelsea the cat.jpg", info(site.url("/media/chelsea.jpg"), "image/jpeg", 240, 160,
            ImageDescription="A <b>tabby</b> cat on a rug", LicenseShortName="CC BY-SA 4.0",
            LicenseUrl="https://creativecommons.org/licenses/by-sa/4.0",
            Artist='<a href="//commons.wikimedia.org/wiki/User:Jane">Jane Doe</a>',
            Credit="Own work", Categories="Cats|Tabby cats")),
        ("Cat video.webm", info(site.url("/media/cat.webm"), "video/webm", 640, 480)),
        ("Cat drawing.svg", info(site.url("/media/cat.svg"), "image/svg+xml", 512, 512)),
    ]  # fmt: skip
    second = [
        ("Cat icon.png", info(site.url("/media/icon.png"), "image/png", 16, 16)),
        ("Rocket launch.jpg", info(site.url("/media/rocket.jpg"), "image/jpeg", 200, 133,
            ObjectName="Saturn rocket", LicenseShortName="Public domain")),
        ("Elsewhere.jpg", info("http://elsewhere.example/x.jpg", "image/jpeg", 300, 300)),
    ]  # fmt: skip

    def handle(request: BaseHTTPRequestHandler) -> None:
        query = parse_qs(request.path.split("?", 1)[1])
        page, more = (second, None) if query.get("gsroffset") == ["3"] else (first, "3")
        payload: dict = {
            "batchcomplete": True,
            "query": {
                "pages": [
                    {
                        "pageid": 100 + i,
                        "ns": 6,
                        "title": f"File:{title}",
                        "index": i + 1,
                        "imageinfo": [meta],
                    }
                    for i, (title, meta) in enumerate(page)
                ]
            },
        }
        if more:
            payload["continue"] = {"gsroffset": int(more), "continue": "gsroffset||"}
        body = json.dumps(payload).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handle


def test_commons_search_fills_the_catalog_with_licence_and_attribution(
    settings: Settings,
) -> None:
    with serve(LocalSite()) as site:
        site.handle("/w/api.php", api(site))
        site.file("/media/chelsea.jpg", jpeg("chelsea", 240), "image/jpeg")
        site.file("/media/rocket.jpg", jpeg("rocket", 200), "image/jpeg")
        # Wikimedia's robots.txt forbids /w/ to crawlers; the API is still for programs.
        site.file("/robots.txt", b"User-agent: *\nDisallow: /w/\n", "text/plain")
        result = run_crawl(
            keywords=["cat"],
            sources=["commons"],
            allow_private=True,
            overrides=[
                f"DREAMCRAWL_COMMONS_API_URL={site.url('/w/api.php')}",
                "AUTOTHROTTLE_ENABLED=False",
            ],
        )
        queries = [parse_qs(q) for q in site.queries["/w/api.php"]]
    assert result.status == "finished", result.error
    assert len(queries) == 2  # the first page, then its continuation
    for query in queries:
        assert query["action"] == ["query"] and query["generator"] == ["search"]
        assert query["gsrnamespace"] == ["6"] and query["gsrsearch"] == ["cat"]
        assert query["prop"] == ["imageinfo"]
        assert query["iiprop"] == ["url|size|mime|extmetadata"]
    assert queries[1]["gsroffset"] == ["3"]
    assert site.hit_count("/media/cat.webm") == site.hit_count("/media/icon.png") == 0

    catalog = open_catalog(settings)
    with catalog.session() as session:
        sightings = {s.url: s for s in session.scalars(select(Sighting))}
        rejections = {r.url: r.reason for r in session.scalars(select(Rejection))}
    assert rejections == {
        site.url("/media/cat.webm"): "not-image",
        site.url("/media/cat.svg"): "unsupported-format",
        site.url("/media/icon.png"): "too-small",
        "http://elsewhere.example/x.jpg": "off-domain",
    }
    cat = sightings[site.url("/media/chelsea.jpg")]
    assert cat.source == "commons"
    assert cat.licence == "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0)"
    assert cat.attribution == "Jane Doe; credit: Own work"
    assert cat.page_url == site.url("/wiki/File:chelsea.jpg")
    wheres = {(m["keyword"], m["where"]) for m in cat.matches}
    assert {("cat", "description"), ("cat", "categories"), ("cat", "title")} <= wheres
    rocket = sightings[site.url("/media/rocket.jpg")]
    assert rocket.licence == "Public domain" and rocket.attribution is None
    assert [(m["keyword"], m["where"]) for m in rocket.matches] == [("cat", "search")]
    assert result.counts["new_images"] == 2 and result.counts["rejections"] == 4
