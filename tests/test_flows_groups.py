"""Dream jobs in groups (flows/groups.py) on a real catalog and real weights: images with
the same parameters share network calls, each row keeps its own lineage, and a failed
image fails alone."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from flows.dreaming import plan_jobs
from flows.groups import group_jobs, run_group
from storage.db import Catalog, open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from stylize import load_engine
from stylize.params import DreamParams
from tests.helpers import add_image, photo_bytes


def _rows(catalog: Catalog) -> dict[int, Stylization]:
    with catalog.session() as session:
        return {r.id: r for r in session.scalars(sa.select(Stylization))}


def test_jobs_are_grouped_by_parameters_in_order(settings: Settings, converted_weights) -> None:
    catalog = open_catalog(settings)
    for name in ("chelsea", "coffee", "astronaut"):
        add_image(catalog, photo_bytes(name, size=96))
    params = DreamParams(presets=["fast", "classic"])
    owed = plan_jobs(settings, params, weights=str(converted_weights)).jobs
    groups = group_jobs(owed, size=2)
    assert [[j.preset for j in g] for g in groups] == [
        ["fast"] * 2,
        ["fast"],
        ["classic"] * 2,
        ["classic"],
    ]
    assert [j.stylization_id for g in groups for j in g] == [j.stylization_id for j in owed]
    assert all(len({j.params_hash for j in g}) == 1 for g in groups)


def test_a_group_shares_calls_and_a_failed_image_fails_alone(
    settings: Settings, converted_weights: Path
) -> None:
    catalog = open_catalog(settings)
    # Two photos of one size (their tiles share a shape), one of another size, and one
    # too small for InceptionV3 (60 px): it fails, the other three are dreamed.
    for name, size in (("chelsea", 160), ("coffee", 160), ("astronaut", 120), ("rocket", 60)):
        add_image(catalog, photo_bytes(name, size=size))
    params = DreamParams(presets=["fast"], steps=2)
    owed = plan_jobs(settings, params, weights=str(converted_weights)).jobs
    (group,) = group_jobs(owed)
    outcomes = run_group(settings, group[:3], weights=str(converted_weights))
    engine = load_engine(str(converted_weights))
    assert [o.status for o in outcomes] == ["done"] * 3
    assert engine.last_runner.calls < engine.last_runner.tiles  # tiles of two photos per call

    outcomes += run_group(settings, group, weights=str(converted_weights))[3:]
    rows = _rows(catalog)
    statuses = [rows[job.stylization_id].status for job in group]
    assert statuses == [StylizationStatus.DONE] * 3 + [StylizationStatus.FAILED]
    assert "needs at least 75 px" in rows[group[3].stylization_id].error
    for job, outcome in zip(group[:3], outcomes[:3], strict=True):
        row = rows[job.stylization_id]
        assert row.output_blob_key == outcome.output and row.attempts == 1
        assert outcome.seconds == round(sum(outcome.octave_timings), 3)
        assert len(row.octave_timings) == 2 and all(t > 0 for t in row.octave_timings)
        assert row.objective_values["after"] > row.objective_values["before"]
    # Each image has its own timings and result, not its group's.
    assert len({tuple(rows[j.stylization_id].octave_timings) for j in group[:3]}) == 3
    assert len({rows[j.stylization_id].output_blob_key for j in group[:3]}) == 3


def test_a_group_that_fails_together_is_dreamed_again_alone(
    settings: Settings, converted_weights: Path
) -> None:
    """One image spoils dream_many (too small): the others are dreamed alone and recorded."""
    catalog = open_catalog(settings)
    for name, size in (("chelsea", 120), ("rocket", 60)):
        add_image(catalog, photo_bytes(name, size=size))
    params = DreamParams(presets=["fast"], steps=1)
    owed = plan_jobs(settings, params, weights=str(converted_weights)).jobs
    (group,) = group_jobs(owed)
    outcomes = run_group(settings, group, weights=str(converted_weights))
    assert [o.status for o in outcomes] == ["done", "failed"]
    assert "InceptionV3 needs at least 75 px" in outcomes[1].error
    rows = _rows(catalog)
    assert rows[group[0].stylization_id].status == StylizationStatus.DONE
    assert rows[group[1].stylization_id].status == StylizationStatus.FAILED


def test_an_image_above_the_pixel_budget_fails_alone_or_fits(
    settings: Settings, converted_weights: Path
) -> None:
    catalog = open_catalog(settings)
    small = add_image(catalog, photo_bytes("chelsea", size=120))  # 120×80 px: within
    large = add_image(catalog, photo_bytes("coffee", size=160))  # 160×107 px: above
    for fit in (False, True):
        params = DreamParams(presets=["fast"], steps=1, max_pixels=10_000, fit=fit)
        (group,) = group_jobs(plan_jobs(settings, params, weights=str(converted_weights)).jobs)
        run_group(settings, group, weights=str(converted_weights))
        rows = {
            row.image_id: row for row in map(_rows(catalog).get, (j.stylization_id for j in group))
        }
        assert rows[small].status == StylizationStatus.DONE
        if fit:
            assert rows[large].status == StylizationStatus.DONE and rows[large].error is None
        else:
            assert rows[large].status == StylizationStatus.FAILED
            assert "above the dream budget of 10000 pixels" in rows[large].error
