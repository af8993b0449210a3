"""DNS rebinding: a host is resolved once, checked, and connected to only where checked.

A real DNS server (tests/dns_server.py) answers the crawl's resolver
(``DREAMCRAWL_DNS_SERVERS``). ``rebind.test`` answers 127.0.0.2, the one address the
crawl allows (``DREAMCRAWL_ALLOWED_NETWORKS``, standing in for a public address), to its
first question, and 127.0.0.1 to every later one. A site listens on each address, on the
same port. A crawler that checks one lookup and connects after another fetches from the
"internal" server on 127.0.0.1; ours must fetch everything from 127.0.0.2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import select

from crawler import CrawlResult, run_crawl
from storage.db import open_catalog
from storage.models import Rejection
from storage.settings import Settings
from tests.dns_server import RebindingDNS, serve_dns
from tests.site_fixture import LocalSite, distinct_photos, serve

FAST = ["AUTOTHROTTLE_ENABLED=False", "DREAMCRAWL_LABELS=false", "DOWNLOAD_TIMEOUT=5"]
PHOTOS = 3


def gallery() -> LocalSite:
    site = LocalSite()
    tags = []
    for i, body in enumerate(distinct_photos(PHOTOS)):
        site.file(f"/p/cat{i}.jpg", body, "image/jpeg")
        tags.append(f'<img src="/p/cat{i}.jpg" alt="a cat">')
    site.page("/", "<title>Cats</title>" + "".join(tags))
    return site


@contextmanager
def checked_and_internal() -> Iterator[tuple[LocalSite, LocalSite, int]]:
    """The same gallery on 127.0.0.2 and on 127.0.0.1, at one port."""
    for _attempt in range(20):
        with ExitStack() as stack:
            checked = stack.enter_context(serve(gallery(), "127.0.0.2"))
            port = int(checked.base_url.rsplit(":", 1)[1])
            try:
                internal = stack.enter_context(serve(gallery(), "127.0.0.1", port))
            except OSError:
                continue  # that port is taken on 127.0.0.1: try another
            yield checked, internal, port
            return
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def crawl(urls: list[str], dns: RebindingDNS, *overrides: str) -> CrawlResult:
    """A crawl for "cat" whose resolver asks ``dns`` and allows 127.0.0.2 only."""
    resolver = [
        f"DREAMCRAWL_DNS_SERVERS=127.0.0.1:{dns.port}",
        "DREAMCRAWL_ALLOWED_NETWORKS=127.0.0.2/32",
    ]
    return run_crawl(keywords=["cat"], start_urls=urls, overrides=[*FAST, *resolver, *overrides])


def test_a_rebinding_name_is_fetched_only_from_the_address_checked(settings: Settings) -> None:
    script = {"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]}
    with (
        checked_and_internal() as (checked, internal, port),
        serve_dns(RebindingDNS(script)) as dns,
    ):
        result = crawl([f"http://rebind.test:{port}/"], dns)
        a_queries = dns.a_queries("rebind.test")
    assert dict(internal.hits) == {}, "a request reached the rebound address 127.0.0.1"
    assert {f"/p/cat{i}.jpg" for i in range(PHOTOS)} | {"/"} <= set(checked.hits)
    assert result.status == "finished" and result.counts["new_images"] == PHOTOS
    assert a_queries == 1, "the name was looked up more than once"


def test_refused_and_unresolvable_names_are_never_fetched(settings: Settings) -> None:
    script = {
        "loopback.test": [["127.0.0.1"]],
        "mixed.test": [["127.0.0.2", "169.254.169.254"]],  # one address refused: all are
        "good.test": [["127.0.0.2"]],
        "internal.good.test": [["127.0.0.1"]],
    }
    with (
        checked_and_internal() as (checked, internal, port),
        serve_dns(RebindingDNS(script)) as dns,
    ):
        checked.redirect("/go", f"http://internal.good.test:{port}/")
        names = ("loopback.test", "mixed.test", "nowhere.test")
        urls = [*(f"http://{name}:{port}/" for name in names), f"http://good.test:{port}/go"]
        result = crawl(urls, dns)
    assert dict(internal.hits) == {}
    assert set(checked.hits) == {"/robots.txt", "/go"}  # good.test, the redirect's start
    assert result.counts["rejected"] == {"private-address": 3, "connection": 1}
    with open_catalog(settings).session() as session:
        rejections = {r.url: (r.reason, r.detail) for r in session.scalars(select(Rejection))}
    expected = [
        ("private-address", "loopback.test (127.0.0.1) is a private"),
        ("private-address", "mixed.test (169.254.169.254) is a private"),
        ("connection", "cannot resolve nowhere.test"),
        ("private-address", f"to http://internal.good.test:{port}/: internal.good.test ("),
    ]
    for url, (reason, text) in zip(urls, expected, strict=True):
        assert rejections[url][0] == reason and text in rejections[url][1], rejections[url]


def test_the_connection_refuses_a_private_address_without_the_guard_middleware(
    settings: Settings,
) -> None:
    """The resolver the download connects through applies the policy itself."""
    script = {"loopback.test": [["127.0.0.1"]]}
    off = json.dumps({"crawler.middlewares.GuardMiddleware": None})
    with (
        checked_and_internal() as (_checked, internal, port),
        serve_dns(RebindingDNS(script)) as dns,
    ):
        result = crawl([f"http://loopback.test:{port}/"], dns, f"DOWNLOADER_MIDDLEWARES={off}")
    assert dict(internal.hits) == {}
    assert result.counts["rejected"] == {"connection": 1}


def test_the_operators_proxy_is_reached_at_its_private_address(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``http_proxy`` on 127.0.0.1: the crawled host is judged (public), and the
    proxy, which the operator chose, is connected to although it is loopback."""
    script = {"photos.test": [["93.184.216.34"]]}
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with serve(gallery()) as proxy, serve_dns(RebindingDNS(script)) as dns:
        monkeypatch.setenv("http_proxy", proxy.base_url)
        result = crawl(["http://photos.test/"], dns)
    assert result.status == "finished" and result.counts["new_images"] == PHOTOS
    assert proxy.hit_count("/") == 1 and dns.a_queries("photos.test") == 1
