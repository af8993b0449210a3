"""Two processes inserting the same image at the same moment."""

from __future__ import annotations

import multiprocessing as mp
import os

import sqlalchemy as sa

from storage.db import Catalog
from storage.models import Image, Sighting
from storage.settings import Settings
from tests.helpers import facts_for, photo_bytes

ROUNDS = 4


def _insert_same_image(barrier, data: bytes, url: str, results) -> None:  # type: ignore[no-untyped-def]
    """Child process: wait for the other, then store blob + image + sighting."""
    from storage.db import open_catalog
    from storage.records import upsert_image

    catalog = open_catalog(Settings.from_env())
    barrier.wait()
    key = catalog.blobs.put_bytes(data)
    with catalog.session() as session:
        image_id, created = upsert_image(session, facts_for(data))
        session.add(Sighting(image_id=image_id, url=url))
    results.put((image_id, created, key))


def test_two_processes_one_image_row(catalog: Catalog) -> None:
    ctx = mp.get_context("spawn")
    env_url = os.environ["DREAMCRAWL_DB_URL"]
    assert env_url == catalog.settings.db_url
    for round_no in range(ROUNDS):
        data = photo_bytes(("chelsea", "coffee", "rocket", "astronaut")[round_no], size=64)
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=_insert_same_image,
                args=(barrier, data, f"http://127.0.0.1/{round_no}/{n}.jpg", results),
            )
            for n in range(2)
        ]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0, "a writer failed: the user would have seen an error"
        ids = {image_id for image_id, _, _ in outcomes}
        assert len(ids) == 1
        assert sorted(created for _, created, _ in outcomes) == [False, True]

    with catalog.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Image)) == ROUNDS
        assert session.scalar(sa.select(sa.func.count()).select_from(Sighting)) == 2 * ROUNDS
    assert len(list(catalog.blobs.iter_keys())) == ROUNDS
