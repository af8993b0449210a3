"""Scrapy's own tool from the repository: `scrapy list`, and `scrapy crawl` into the catalog.

Each runs in a subprocess from the repository root (scrapy.cfg names crawler.settings)
against a real HTTP site on 127.0.0.1. A plain `scrapy crawl` records its own crawl run
(crawler/standalone.py) and stores like `dreamcrawl crawl`; a user's item pipeline given
in ITEM_PIPELINES runs besides ours without re-listing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from storage.db import open_catalog
from storage.integrity import check
from storage.models import CrawlRun, CrawlStatus, Rejection, Sighting
from storage.settings import Settings
from tests.conftest import REPO
from tests.site_fixture import LocalSite, jpeg, serve

USER_PIPELINE = '''
class RecordUrls:
    """A user's own pipeline: appends the URL of every item it receives."""

    def process_item(self, item):
        with open(OUT, "a") as fh:
            fh.write(item.candidate.url + "\\n")
        return item
'''


def scrapy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "scrapy"), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_scrapy_list_names_our_spiders() -> None:
    result = scrapy("list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["search", "site"]


def test_scrapy_crawl_records_its_own_run_and_keeps_user_pipelines(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "seen.txt"
    (tmp_path / "userpipe.py").write_text(f"OUT = {str(out)!r}\n{USER_PIPELINE}")
    site = LocalSite()
    site.page(
        "/",
        "<html><head><title>Pets</title></head><body>"
        "<img src='/cat.jpg' alt='a tabby cat'><img src='/cat-again.jpg' alt='the cat again'>"
        "<img src='/tiny.jpg' alt='a tiny cat'><a href='/more.html'>more cats</a></body></html>",
    )
    site.page("/more.html", "<html><body><img src='/gone.jpg' alt='a lost cat'></body></html>")
    site.file("/cat.jpg", jpeg("chelsea"), "image/jpeg")
    site.file("/cat-again.jpg", jpeg("chelsea"), "image/jpeg")
    site.file("/tiny.jpg", jpeg("chelsea", width=20), "image/jpeg")
    with serve(site):
        result = scrapy(
            "crawl", "site",
            "-a", "keywords=cat,kitten",
            "-a", f"start_urls={site.url('/')}",
            "-s", "DREAMCRAWL_ALLOW_PRIVATE=true",
            "-s", "ITEM_PIPELINES=" + json.dumps({"userpipe.RecordUrls": 400}),
            env={"PYTHONPATH": str(tmp_path)},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    catalog = open_catalog(settings)
    with catalog.session() as session:
        runs = session.scalars(sa.select(CrawlRun)).all()
        assert len(runs) == 1
        run = runs[0]
        assert (run.kind, run.status, run.keywords, run.sources) == (
            "crawl", CrawlStatus.FINISHED, ["cat", "kitten"], ["site"],
        )  # fmt: skip
        assert run.settings["start_urls"] == [site.url("/")]
        assert run.finished_at is not None
        sightings = session.scalars(sa.select(Sighting).where(Sighting.crawl_run_id == run.id))
        by_url = {s.url: s for s in sightings}
        rejections = dict(
            session.execute(
                sa.select(Rejection.url, Rejection.reason).where(Rejection.crawl_run_id == run.id)
            ).all()
        )
    assert set(by_url) == {site.url("/cat.jpg"), site.url("/cat-again.jpg")}
    assert sorted(s.duplicate for s in by_url.values()) == [False, True]  # one is a copy
    assert set(rejections) == {site.url("/tiny.jpg"), site.url("/gone.jpg")}
    assert run.counts["sightings"] == 2 and run.counts["process"]["pages"] == 2
    assert check(catalog) == []
    # The user's pipeline ran after ours, on every item: each ended as a row.
    assert sorted(out.read_text().split()) == sorted([*by_url, *rejections])


def test_scrapy_crawl_without_start_urls_says_what_it_needs(settings: Settings) -> None:
    result = scrapy("crawl", "site", "-a", "keywords=cat")
    assert result.returncode != 0
    assert "scrapy crawl site needs -a start_urls=https://example.org/" in result.stderr
    assert not (settings.home / "catalog.sqlite").exists() or _no_runs(settings)


def _no_runs(settings: Settings) -> bool:
    with open_catalog(settings).session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(CrawlRun)) == 0
