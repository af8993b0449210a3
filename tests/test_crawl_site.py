"""A real crawl of a real HTTP server: every hostile case ends where it should."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.db import Catalog, dispose_engines, open_catalog
from storage.integrity import check
from storage.models import CrawlRun, Image, Rejection, Sighting
from storage.settings import Settings
from tests import hostile_site
from tests.s3_fixture import prefix_for, use_s3
from tests.site_fixture import LocalSite, serve

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))


@dataclass
class Crawled:
    site: LocalSite
    result: dict[str, Any]
    catalog: Catalog
    sightings: dict[str, Sighting]
    images: dict[int, Image]
    rejections: dict[str, Rejection]
    run: CrawlRun

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.site.url(path)


@pytest.fixture(scope="module", params=["local", "s3"])
def crawled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Crawled]:
    """The hostile site crawled once per blob store (local folder, S3)."""
    home = tmp_path_factory.mktemp("home")
    with (
        pytest.MonkeyPatch.context() as env,
        serve(hostile_site.build(LocalSite())) as site,
    ):
        env.setenv("DREAMCRAWL_HOME", str(home))
        env.delenv("DREAMCRAWL_DB_URL", raising=False)
        env.delenv("DREAMCRAWL_BLOBS", raising=False)
        if request.param == "s3":
            use_s3(request.getfixturevalue("s3_server"), prefix_for("crawl-site"), env)
        command = [DREAMCRAWL, "crawl", "--start-url", site.url("/"), "--depth", "1"]
        command += ["--allow-private", "--json"]
        for keyword in hostile_site.KEYWORDS:
            command += ["--keyword", keyword]
        for override in hostile_site.TEST_OVERRIDES:
            command += ["-s", override]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        catalog = open_catalog(Settings.from_env())
        with catalog.session() as session:
            sightings = {s.url: s for s in session.scalars(select(Sighting))}
            rejections = {r.url: r for r in session.scalars(select(Rejection))}
            images = {i.id: i for i in session.scalars(select(Image))}
            run = session.scalars(select(CrawlRun)).one()
        yield Crawled(site, json.loads(proc.stdout), catalog, sightings, images, rejections, run)
        dispose_engines()


@pytest.mark.parametrize("path,expected", sorted(hostile_site.EXPECTED.items()))
def test_each_url_ends_where_it_should(crawled: Crawled, path: str, expected: str) -> None:
    url = crawled.url(path)
    sighting = crawled.sightings.get(url)
    rejection = crawled.rejections.get(url)
    if expected == "absent":
        assert sighting is None and rejection is None
        assert crawled.site.hit_count(path) == 0
    elif expected.startswith("rejected:"):
        assert sighting is None
        assert rejection is not None, f"{path} has no rejection row"
        assert rejection.reason == expected.split(":", 1)[1], rejection.detail
        assert rejection.detail
    else:
        assert rejection is None, f"{path} was rejected: {rejection and rejection.detail}"
        assert sighting is not None, f"{path} has no sighting"
        if expected == "image":
            assert not sighting.duplicate and not sighting.near_duplicate
        assert sighting.source == "site"
        assert sighting.page_url and sighting.page_url.startswith(crawled.site.base_url)
        assert sighting.matches and sighting.relevance > 0
        # The sighting's keywords are the ones it matched, in the run's order.
        matched = {m["keyword"] for m in sighting.matches}
        assert sighting.keywords == [k for k in hostile_site.KEYWORDS if k in matched]


def test_same_image_at_two_urls_is_one_image_and_two_sightings(crawled: Crawled) -> None:
    first = crawled.sightings[crawled.url("/img/chelsea.jpg")]
    copy = crawled.sightings[crawled.url("/img/chelsea-copy.jpg")]
    assert copy.image_id == first.image_id
    assert sorted([first.duplicate, copy.duplicate]) == [False, True]
    assert crawled.result["duplicates"] == 1


def test_reencoded_copy_is_flagged_as_near_duplicate(crawled: Crawled) -> None:
    twins = [crawled.sightings[crawled.url(p)] for p, e in hostile_site.EXPECTED.items()
             if e == "twin"]  # fmt: skip
    original = crawled.images[crawled.sightings[crawled.url("/img/chelsea.jpg")].image_id]
    reencoded = crawled.images[
        crawled.sightings[crawled.url("/img/chelsea-reencoded.jpg")].image_id
    ]
    assert original.id != reencoded.id
    links = {(original.near_duplicate_of_id, reencoded.near_duplicate_of_id)}
    assert links <= {(None, original.id), (reencoded.id, None)}
    assert sum(s.near_duplicate for s in twins) == 1
    assert crawled.result["near_duplicates"] == 1


def test_nothing_is_lost(crawled: Crawled) -> None:
    considered = {crawled.url(p) for p, e in hostile_site.EXPECTED.items() if e != "absent"}
    assert not set(crawled.sightings) & set(crawled.rejections)
    assert set(crawled.sightings) | set(crawled.rejections) == considered
    # Every image-like URL the server answered belongs to a row (or to a redirect chain).
    served = {p for p in crawled.site.hits if p.startswith(("/img/", "/private/"))}
    chained = {"/img/redirect-target.jpg"}
    assert {crawled.url(p) for p in served - chained} <= considered


def test_run_row_and_counts_agree_with_the_rows(crawled: Crawled) -> None:
    run, result = crawled.run, crawled.result
    assert (run.status, run.kind, run.sources) == ("finished", "crawl", ["site"])
    assert run.keywords == list(hostile_site.KEYWORDS) and run.finished_at is not None
    assert result["status"] == "finished" and result["run_id"] == run.id
    assert result["sightings"] == len(crawled.sightings)
    assert result["rejections"] == len(crawled.rejections)
    assert result["duplicates"] == 1
    assert result["new_images"] == len(crawled.images)
    assert run.counts["rejected"]["http-404"] == 2


def test_catalog_is_consistent_and_blobs_hold_the_original_bytes(crawled: Crawled) -> None:
    assert check(crawled.catalog) == []
    route = crawled.site.routes["/img/rocket.png"]
    image = crawled.images[crawled.sightings[crawled.url("/img/rocket.png")].image_id]
    assert image.sha256 == hashlib.sha256(route.body).hexdigest()
    assert crawled.catalog.blobs.read_bytes(image.blob_key) == route.body
    assert (image.format, image.bytes, image.phash is not None) == ("PNG", len(route.body), True)


@pytest.mark.parametrize(
    "path,size,fmt",
    [
        ("/img/rotated-cat.jpg", (92, 240), "JPEG"),  # EXIF orientation 6 applied
        ("/img/deep-cat.png", (200, 200), "PNG"),  # 16-bit greyscale
        ("/img/cmyk-cat.jpg", (200, 240), "JPEG"),
        ("/img/animated-cat.gif", (160, 160), "GIF"),
        ("/img/pic-cat.webp", (200, 200), "WEBP"),
        ("/img/cat-photo", (200, 200), "JPEG"),  # sniffed, whatever text/html said
    ],
)
def test_dimensions_and_formats(crawled: Crawled, path: str, size: tuple, fmt: str) -> None:
    image = crawled.images[crawled.sightings[crawled.url(path)].image_id]
    assert ((image.width, image.height), image.format) == (size, fmt)


@pytest.mark.parametrize(
    "path,keyword,where",
    [
        ("/img/chelsea.jpg", "cat", "alt"),
        ("/img/rocket.png", "rocket", "figcaption"),
        ("/img/coffee-cat.jpg", "cat", "filename"),
        ("/img/og-cat.jpg", "cat", "og"),
        ("/img/linked-cat.jpg", "cat", "link-text"),
        ("/img/pic-cat.webp", "cat", "alt"),
        ("/img/page2-cat.jpg", "cat", "page-title"),
        ("/img/broken-page-cat.jpg", "cat", "alt"),
    ],
)
def test_matches_record_which_keyword_matched_where(
    crawled: Crawled, path: str, keyword: str, where: str
) -> None:
    matches = crawled.sightings[crawled.url(path)].matches
    assert {"keyword": keyword, "where": where} in [
        {"keyword": m["keyword"], "where": m["where"]} for m in matches
    ]
    assert all(m["text"] for m in matches)


def test_politeness(crawled: Crawled) -> None:
    hits = crawled.site.hit_count
    assert hits("/robots.txt") == 1
    for path in ("/private/secret-cat.jpg", "/private/page.html", "/img/gravel.jpg"):
        assert hits(path) == 0, path  # refused before any download
    assert hits("/img/flaky-cat.jpg") == 2  # a 500, then the retry succeeded
    assert hits("/page3.html") == 0  # beyond --depth 1
    assert all(agent.startswith("dreamcrawl/") for agent in crawled.site.user_agents)
    assert crawled.rejections[crawled.url("/img/loop-cat.jpg")].detail.count("->") == 2
