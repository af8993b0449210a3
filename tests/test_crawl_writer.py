"""The catalog writer's group commit: several complete URLs per transaction, each URL
still all-or-nothing, and no row before its blob's folder entry is durable."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.items import Candidate
from crawler.validate import Limits
from crawler.writer import CatalogWriter
from storage.db import Catalog
from storage.models import CrawlRun, Image, Rejection, Sighting
from tests.site_fixture import distinct_photos


def new_run(catalog: Catalog) -> int:
    with catalog.session() as session:
        run = CrawlRun(kind="crawl", keywords=["cat"], sources=["site"])
        session.add(run)
        session.flush()
        return int(run.id)


class HeldCommits:
    """Wraps the writer's ``sync_dirs``: holds the first batch until released, and
    records every batch's keys, and those whose image row was visible before an
    earlier batch could have committed it."""

    def __init__(self, writer: CatalogWriter) -> None:
        self.writer = writer
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[str]] = []
        self.visible_early: list[str] = []
        self._sync = writer.blobs.sync_dirs
        writer.blobs.sync_dirs = self  # type: ignore[method-assign]

    def __call__(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not self.batches:
            self.entered.set()
            assert self.release.wait(30)
        self.batches.append(keys)
        earlier = {key for batch in self.batches[:-1] for key in batch}  # committed
        with self.writer.catalog.read_session() as session:
            stmt = select(Image.sha256).where(Image.sha256.in_(keys))
            self.visible_early += [key for key in session.scalars(stmt) if key not in earlier]
        for key in keys:  # the blob itself is already in place, only not yet committed
            assert self.writer.blobs.exists(key)
        self._sync(keys)


def test_queued_urls_commit_together_after_their_folders_are_synced(catalog: Catalog) -> None:
    run_id = new_run(catalog)
    writer = CatalogWriter(catalog, run_id, Limits(min_width=64, min_height=64))
    held = HeldCommits(writer)
    a, b, c = distinct_photos(3, width=160)
    items = [
        ("http://x/a.jpg", a),
        ("http://x/b.jpg", b),
        ("http://x/c.jpg", c),
        ("http://x/a-again.jpg", a),
        ("http://x/notes.txt", b"not an image at all"),
    ]
    try:
        futures = []
        for url, body in items:
            futures.append(writer.submit(writer.prepare(Candidate(url, "http://x/", "site"), body)))
            assert held.entered.wait(30)  # the writer thread holds the first URL alone
        held.release.set()
        outcomes = [f.result(timeout=30) for f in futures]
    finally:
        writer.close()
    kinds = [o.kind for o in outcomes]
    assert kinds == ["image", "image", "image", "duplicate", "rejected"]
    assert outcomes[3].image_id == outcomes[0].image_id
    assert outcomes[4].reason == "not-image"
    # The first URL went alone (held); the four queued meanwhile made one batch, and no
    # image row was visible before its folder was synced.
    assert len(held.batches) == 2 and len(held.batches[1]) == 3
    assert held.visible_early == []
    with catalog.session() as session:
        sightings = session.scalars(select(Sighting).where(Sighting.crawl_run_id == run_id)).all()
        assert sorted(s.url for s in sightings) == sorted(url for url, _ in items[:4])
        assert [s.duplicate for s in sightings if s.url.endswith("again.jpg")] == [True]
        rejected = session.scalars(select(Rejection.url)).all()
        assert rejected == ["http://x/notes.txt"]


def test_a_failing_url_does_not_take_its_batch_with_it(catalog: Catalog) -> None:
    run_id = new_run(catalog)
    writer = CatalogWriter(catalog, run_id, Limits(min_width=64, min_height=64))
    held = HeldCommits(writer)
    first, good, bad = distinct_photos(3, width=160)
    try:
        futures = [writer.submit(writer.prepare(Candidate("http://x/1.jpg", None, "site"), first))]
        assert held.entered.wait(30)
        good_future = writer.submit(writer.prepare(Candidate("http://x/2.jpg", None, "site"), good))
        # A sighting without a URL violates NOT NULL: the batch fails, then each URL is
        # retried alone, and only this one fails, its image row rolled back with it.
        broken = writer.prepare(Candidate(None, None, "site"), bad)  # type: ignore[arg-type]
        bad_future = writer.submit(broken)
        held.release.set()
        assert futures[0].result(timeout=30).kind == "image"
        assert good_future.result(timeout=30).kind == "image"
        with pytest.raises(Exception, match=r"(?i)null"):
            bad_future.result(timeout=30)
        assert broken.facts is not None
        bad_key = broken.facts.sha256
        assert writer.blobs.exists(bad_key)  # written, but no row refers to it
    finally:
        writer.close()
    with catalog.session() as session:
        urls = session.scalars(select(Sighting.url).order_by(Sighting.url)).all()
        assert urls == ["http://x/1.jpg", "http://x/2.jpg"]
        assert session.scalars(select(Image.id).where(Image.sha256 == bad_key)).all() == []
    assert not catalog.blobs.exists(bad_key)  # the run's journal let close() remove it


def test_the_synchronous_interface_still_waits_for_the_commit(
    catalog: Catalog, tmp_path: Path
) -> None:
    run_id = new_run(catalog)
    writer = CatalogWriter(catalog, run_id, Limits(min_width=64, min_height=64))
    path = tmp_path / "photo.jpg"
    path.write_bytes(next(distinct_photos(1, width=160)))
    try:
        outcome = writer.record_image(Candidate(path.as_uri(), None, "file"), path)
        assert writer.record_rejection("http://x/gone", None, "http-404") is True
        assert writer.record_rejection("http://x/gone", None, "http-404") is False
        with catalog.session() as session:  # visible as soon as the call returns
            assert session.get(Image, outcome.image_id) is not None
    finally:
        writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.record_rejection("http://x/late", None, "http-404")
