"""`crawler.run_crawl` from Python (what the flows call), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from crawler import run_crawl
from storage.db import open_catalog
from storage.integrity import check
from storage.models import CrawlRun, Rejection, Sighting
from storage.settings import Settings
from tests.site_fixture import LocalSite, distinct_photos, serve

FAST = ["AUTOTHROTTLE_ENABLED=False"]


def gallery(site: LocalSite, count: int) -> LocalSite:
    tags = []
    for i, body in enumerate(distinct_photos(count)):
        site.file(f"/p/cat{i}.jpg", body, "image/jpeg")
        tags.append(f'<img src="/p/cat{i}.jpg" alt="a cat">')
    site.file("/p/copy.jpg", site.routes["/p/cat0.jpg"].body, "image/jpeg")
    tags.append('<img src="/p/copy.jpg" alt="cat">')
    tags.append('<img src="/p/gone.jpg" alt="cat">')
    site.page("/", "<title>Cats</title>" + "".join(tags))
    return site


def test_run_crawl_returns_the_run_and_its_counts(db_url: str) -> None:
    with serve(gallery(LocalSite(), 3)) as site:
        result = run_crawl(
            keywords=["cat"], start_urls=[site.url("/")], allow_private=True, overrides=FAST,
            prefect_flow_run_id="flow-123",
        )  # fmt: skip
    assert result.status == "finished" and result.error is None
    assert result.counts["new_images"] == 3 and result.counts["duplicates"] == 1
    assert result.counts["rejected"] == {"http-404": 1}
    catalog = open_catalog(Settings.from_env())
    with catalog.session() as session:
        run = session.get(CrawlRun, result.run_id)
        assert run.prefect_flow_run_id == "flow-123"
        assert run.settings["allow_private"] is True
    assert check(catalog) == []


def test_private_addresses_are_refused_unless_allowed(settings: Settings) -> None:
    with serve(gallery(LocalSite(), 1)) as site:
        result = run_crawl(keywords=["cat"], start_urls=[site.url("/")], overrides=FAST)
        hits = sum(site.hits.values())
    assert result.status == "finished"
    assert result.counts["rejected"] == {"private-address": 1}
    assert hits == 0
    with open_catalog(settings).session() as session:
        rejection = session.scalars(select(Rejection)).one()
    assert rejection.url == site.url("/") and "--allow-private" in rejection.detail


def test_max_images_stops_the_crawl(settings: Settings) -> None:
    with serve(gallery(LocalSite(), 8)) as site:
        result = run_crawl(
            keywords=["cat"], start_urls=[site.url("/")], allow_private=True, max_images=3,
            overrides=[*FAST, "CONCURRENT_REQUESTS_PER_DOMAIN=2"],
        )  # fmt: skip
        image_hits = sum(n for path, n in site.hits.items() if path.startswith("/p/"))
    assert result.status == "finished"
    assert result.counts["new_images"] == 3
    assert image_hits < 10  # the rest of the gallery was never fetched
    with open_catalog(settings).session() as session:
        urls = list(session.scalars(select(Sighting.url)))
    assert len(urls) >= 3


def test_a_crawl_whose_only_start_url_is_refused_says_so_and_exits_non_zero(
    settings: Settings, capsys
) -> None:
    """Nothing could be crawled at all: one line naming the URL and the reason, exit 2."""
    from pipeline.cli import main

    with serve(gallery(LocalSite(), 1)) as site:
        # Labels off: without labeller weights a crawl warns about them on a line of its own.
        args = ["crawl", "-k", "cat", "--start-url", site.url("/"), "-s", "DREAMCRAWL_LABELS=false"]
        code = main(args)
        hits = sum(site.hits.values())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and hits == 0
    assert len(err) == 1 and "nothing was crawled" in err[0], err
    assert site.url("/") in err[0] and "private-address" in err[0] and "--allow-private" in err[0]
