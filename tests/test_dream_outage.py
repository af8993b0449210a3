"""The blob store (a real SeaweedFS) is down while a group of dreams runs: each row is
recorded ``failed`` with one line, nothing half written, and the next run, once the
server is back, dreams them (docs/engine.md, "When something fails mid-dream")."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from flows.dreaming import plan_jobs
from flows.groups import group_jobs, run_group
from storage.db import open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from stylize.params import DreamParams
from tests.helpers import add_image, photo_bytes
from tests.s3_server import SeaweedFS


def test_a_dead_blob_store_fails_the_dreams_and_the_next_run_does_them(
    own_s3: SeaweedFS, converted_weights: Path
) -> None:
    settings = Settings.from_env()
    catalog = open_catalog(settings)
    for name in ("chelsea", "coffee"):
        add_image(catalog, photo_bytes(name, size=120))
    params = DreamParams(presets=["fast"], steps=1)
    weights = str(converted_weights)

    own_s3.kill()
    (group,) = group_jobs(plan_jobs(settings, params, weights=weights).jobs)
    run_group(settings, group, weights=weights)
    with catalog.session() as session:
        rows = session.scalars(sa.select(Stylization)).all()
    assert [r.status for r in rows] == [StylizationStatus.FAILED] * 2
    assert all(r.output_blob_key is None and r.attempts == 1 for r in rows)
    assert all(r.error and "\n" not in r.error for r in rows)
    assert all(r.lease_expires_at is None for r in rows)  # nothing left held

    own_s3.start()  # the same server, the same data, back again
    (again,) = group_jobs(plan_jobs(settings, params, weights=weights).jobs)
    assert sorted(j.stylization_id for j in again) == sorted(r.id for r in rows)
    run_group(settings, again, weights=weights)
    with catalog.session() as session:
        rows = session.scalars(sa.select(Stylization)).all()
    assert [r.status for r in rows] == [StylizationStatus.DONE] * 2
    assert all(r.attempts == 2 and catalog.blobs.exists(r.output_blob_key) for r in rows)
