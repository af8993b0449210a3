"""Lazy-loaded images: the photo the tag names is fetched, not its placeholder.

A real crawl of a real HTTP server whose page uses the common lazy-loading patterns:
``src`` is a placeholder (a file or a data: URI) and the photo is in ``data-src``,
``data-original``, ``data-lazy-src`` or ``data-srcset``.
"""

from __future__ import annotations

from sqlalchemy import select

from crawler import run_crawl
from storage.db import open_catalog
from storage.models import Sighting
from storage.settings import Settings
from tests.site_fixture import LocalSite, encode, jpeg, photo, serve

GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="
PAGE = f"""<html><head><title>cats</title></head><body>
<img src="/static/placeholder.gif" data-src="/photos/a.jpg" alt="a cat">
<img src="{GIF}" data-original="/photos/b.jpg" alt="a cat">
<img src="/static/placeholder.gif" data-lazy-src="/photos/c.jpg" alt="a cat">
<img src="/static/placeholder.gif" data-srcset="/photos/d-small.jpg 100w, /photos/d.jpg 800w"
     alt="a cat">
<img src="/photos/e-small.jpg" srcset="/photos/e.jpg 2x" alt="a cat">
<img src="/photos/f.jpg" alt="a cat">
</body></html>"""
PHOTOS = {"a": "chelsea", "b": "coffee", "c": "rocket", "d": "astronaut", "e": "camera", "f": "cat"}


def test_lazy_loading_attributes_win_over_placeholders(settings: Settings) -> None:
    site = LocalSite()
    site.page("/", PAGE)
    site.file("/static/placeholder.gif", encode(photo("chelsea", 80), "GIF"), "image/gif")
    for name, sample in PHOTOS.items():
        site.file(f"/photos/{name}.jpg", jpeg(sample, 240), "image/jpeg")
    site.file("/photos/d-small.jpg", jpeg("astronaut", 100), "image/jpeg")
    site.file("/photos/e-small.jpg", jpeg("camera", 100), "image/jpeg")
    with serve(site):
        result = run_crawl(
            keywords=["cat"], start_urls=[site.url("/")], depth=0, allow_private=True
        )
    assert result.status == "finished"
    catalog = open_catalog(settings)
    with catalog.session() as session:
        urls = set(session.scalars(select(Sighting.url)))
    assert urls == {site.url(f"/photos/{name}.jpg") for name in PHOTOS}
    assert site.hits["/static/placeholder.gif"] == 0
    assert site.hits["/photos/d-small.jpg"] == site.hits["/photos/e-small.jpg"] == 0
