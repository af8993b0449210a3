"""Dream jobs in groups: images with the same parameters go through ``Engine.dream_many``
together (their tiles share network calls), and each still gets its own catalog row,
timings, lineage and status.

A failure stays with its image: an image that cannot be read fails before the group is
dreamed; if the group's dream fails, each image is dreamed again alone, so only the
images that fail alone are recorded as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flows.dreaming import DreamJob, DreamOutcome, DreamStatus, encode_output
from storage import jobs
from storage.db import Catalog, open_catalog
from storage.settings import Settings

log = logging.getLogger("dreamcrawl.flows.groups")

# Images per dream_many call: enough to fill a CPU's batches (and a GPU's, with large
# photos); small enough that a worker's memory holds the photos and their octaves.
DEFAULT_GROUP_SIZE = 8


def group_jobs(owed: Sequence[DreamJob], size: int = DEFAULT_GROUP_SIZE) -> list[list[DreamJob]]:
    """Jobs with the same parameters and weights, in groups of at most ``size``, in order."""
    by_params: dict[tuple[str, str], list[DreamJob]] = {}
    for job in owed:
        by_params.setdefault((job.params_hash, job.weights_sha256), []).append(job)
    return [
        same[start : start + size]
        for same in by_params.values()
        for start in range(0, len(same), max(1, size))
    ]


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _failed(
    catalog: Catalog, job: DreamJob, exc: BaseException, size: tuple[int, int] | None = None
) -> DreamOutcome:
    """Record a failed dream on its row (retried later), so nothing is lost silently."""
    error = _error(exc)
    with catalog.session() as session:
        jobs.fail(session, job.stylization_id, error)
    log.warning("dream #%s failed: %s", job.stylization_id, error)
    return DreamOutcome(
        job.stylization_id,
        job.preset,
        DreamStatus.FAILED,
        error=error,
        image_sha256=job.image_sha256,
        width=size[0] if size else None,
        height=size[1] if size else None,
    )


def _done(catalog: Catalog, job: DreamJob, result: Any, size: tuple[int, int]) -> DreamOutcome:
    """Store the output blob and record the dream's lineage on its row."""
    output_key = catalog.blobs.put_bytes(encode_output(result.image))
    timings = tuple(round(t, 4) for t in result.octave_timings)
    with catalog.session() as session:
        jobs.complete(
            session,
            job.stylization_id,
            output_key=output_key,
            device=result.device,
            octave_timings=list(timings),
            objective_values={
                "before": result.objective_before,
                "after": result.objective_after,
                "octave_shapes": [list(s) for s in result.octave_shapes],
            },
        )
    return DreamOutcome(
        job.stylization_id,
        job.preset,
        DreamStatus.DONE,
        seconds=round(sum(result.octave_timings), 3),
        octave_timings=timings,
        device=result.device,
        output=output_key,
        objective_before=result.objective_before,
        objective_after=result.objective_after,
        width=size[0],
        height=size[1],
        image_sha256=job.image_sha256,
    )


def _read(catalog: Catalog, sha256: str) -> Any:
    from PIL import Image as PILImage
    from PIL import ImageOps

    with catalog.blobs.open(sha256) as fh, PILImage.open(fh) as opened:
        picture = ImageOps.exif_transpose(opened)
        picture.load()
    return picture


def _dream_all(engine: Any, config: Any, pictures: list) -> list:
    """``dream_many``'s results; if it fails, each picture alone (result or exception)."""
    try:
        return engine.dream_many(pictures, config)
    except Exception as exc:
        if len(pictures) == 1:
            return [exc]
        log.warning("a group of %d dreams failed (%s); dreaming each alone", len(pictures), exc)
    results: list = []
    for picture in pictures:
        try:
            results.append(engine.dream(picture, config))
        except Exception as exc:  # this image's own failure
            results.append(exc)
    return results


def run_group(
    settings: Settings,
    group: Sequence[DreamJob],
    *,
    weights: str | None = None,
    flow_run_id: str | None = None,
    lease: timedelta | None = None,
) -> list[DreamOutcome]:
    """Compute the dreams of jobs with one set of parameters together; record each.

    Returns one outcome per job, in order: ``done``, ``skipped`` (another worker has it
    or it was finished meanwhile) or ``failed`` (recorded on the row with its error,
    retried by a later run until it runs out of attempts). Each claim's ``lease``
    (default ``DREAMCRAWL_DREAM_LEASE_S``) is renewed by a heartbeat while the group runs,
    so a dead worker holds its rows for one lease only.
    """
    from flows.heartbeat import keep_leases
    from stylize import load_engine

    lease = lease or jobs.lease_from_env()
    catalog = open_catalog(settings)
    outcomes: dict[int, DreamOutcome] = {}
    claimed: list[DreamJob] = []
    attempts: dict[int, int] = {}
    for job in group:
        with catalog.session() as session:
            if jobs.claim(session, job.stylization_id, lease=lease, flow_run_id=flow_run_id):
                claimed.append(job)
                attempts[job.stylization_id] = jobs.attempt(session, job.stylization_id)
            else:
                outcomes[job.stylization_id] = DreamOutcome(
                    job.stylization_id, job.preset, DreamStatus.SKIPPED
                )
    with keep_leases(catalog, attempts, lease):
        _dream_claimed(catalog, settings, claimed, weights, outcomes, load_engine)
    return [outcomes[job.stylization_id] for job in group]


def _dream_claimed(
    catalog: Catalog,
    settings: Settings,
    claimed: list[DreamJob],
    weights: str | None,
    outcomes: dict[int, DreamOutcome],
    load_engine: Any,
) -> None:
    ready, pictures = [], []
    for job in claimed:
        try:
            picture = _read(catalog, job.image_sha256)
            # The pixel budget: refused (recorded on the row), or downscaled with fit.
            pictures.append(job.config.fit_image(picture, f"image {job.image_sha256[:12]}"))
            ready.append(job)
        except Exception as exc:
            outcomes[job.stylization_id] = _failed(catalog, job, exc)
    if ready:
        try:
            engine = load_engine(weights or settings.weights_override, settings.weights_dir)
            results = _dream_all(engine, ready[0].config, pictures)
        except Exception as exc:  # no engine: every dream of the group fails the same way
            results = [exc] * len(ready)
        for job, picture, result in zip(ready, pictures, results, strict=True):
            try:
                if isinstance(result, BaseException):
                    raise result
                outcomes[job.stylization_id] = _done(catalog, job, result, picture.size)
            except Exception as exc:
                outcomes[job.stylization_id] = _failed(catalog, job, exc, picture.size)
