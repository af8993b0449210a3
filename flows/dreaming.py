"""Dreaming catalog images: the work behind ``dreamcrawl stylize`` and the Prefect flows.

It turns a request (presets or explicit parameters) into :class:`DreamJob` values, one
per image still owed a dream, and computes one job: claim the row, read the original
blob, dream it, store the output blob, record the lineage. Jobs carry ids and plain
values only, so any Prefect task runner (threads, Dask workers) can ship them.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from storage import jobs
from storage.db import open_catalog
from storage.errors import UserError
from storage.limits import DREAM_MAX_PIXELS, check_dream_budget
from storage.models import Image, Stylization
from storage.settings import Settings
from storage.version import __version__
from stylize.weights import weights_identity

log = logging.getLogger("dreamcrawl.flows.dreaming")

CODE_VERSION = __version__


@dataclass(frozen=True)
class DreamOverrides:
    """Explicit parameters that replace a preset's values (None keeps the preset's)."""

    layers: str | None = None
    channel: str | None = None
    octaves: int | None = None
    octave_scale: float | None = None
    steps: int | None = None
    step_size: float | None = None
    tile: int | None = None
    seed: int | None = None
    class_index: int | None = None
    start: str | None = None
    precision: str | None = None


def build_config(preset: str, overrides: DreamOverrides | None = None) -> Any:
    """The validated DreamConfig for ``preset`` with ``overrides`` applied.

    One place turns user flags into parameters, so ``dreamcrawl dream``, ``stylize``,
    ``run`` and the flows agree on what a set of flags means.
    """
    from stylize import get_preset, parse_channel, parse_layers

    config = get_preset(preset)
    if overrides is None:
        return config.validate()
    changes: dict[str, Any] = {}
    if overrides.layers:
        changes["layers"] = parse_layers(overrides.layers)
        changes["channel"] = None
    if overrides.channel:
        layer, channel = parse_channel(overrides.channel)
        if overrides.layers and [name for name, _ in changes["layers"]] != [layer]:
            raise UserError("--channel names its own layer; drop --layers or make them agree")
        changes["layers"] = ((layer, 1.0),)
        changes["channel"] = channel
    if overrides.class_index is not None:
        changes["class_index"] = overrides.class_index
    elif overrides.layers or overrides.channel:
        changes["class_index"] = None
    for name in ("octaves", "octave_scale", "steps", "step_size", "tile", "seed"):
        value = getattr(overrides, name)
        if value is not None:
            changes[name] = value
    for name in ("start", "precision"):
        if getattr(overrides, name):
            changes[name] = getattr(overrides, name)
    return dataclasses.replace(config, **changes).validate()


@dataclass(frozen=True)
class DreamBudget:
    """How many pixels one dream may take (storage/limits.py): an image above the budget
    is downscaled to fit (``fit``) or refused with one line. Not a dream parameter of
    the preset: it decides the input, so it is part of the cache key."""

    max_pixels: int = DREAM_MAX_PIXELS
    fit: bool = False


@dataclass(frozen=True)
class DreamJob:
    """One owed dream: the catalog row to fill and everything needed to compute it."""

    stylization_id: int
    image_sha256: str
    preset: str
    config: Any  # stylize.DreamConfig (a frozen dataclass: picklable for Dask)
    params_hash: str
    weights_sha256: str
    budget: DreamBudget = DreamBudget()

    @property
    def cache_key(self) -> str:
        """Same image, parameters, weights and budget: same dream (Prefect's cache key)."""
        budget = f"{self.budget.max_pixels}{'-fit' if self.budget.fit else ''}"
        return f"dream-{self.image_sha256}-{self.params_hash}-{self.weights_sha256}-{budget}"


def plan_jobs(
    settings: Settings,
    presets: Sequence[str],
    *,
    overrides: DreamOverrides | None = None,
    image_ids: Sequence[int] | None = None,
    limit: int | None = None,
    weights: str | None = None,
    max_pixels: int | None = None,
    fit: bool = False,
) -> list[DreamJob]:
    """Rows for every (image, preset) not yet dreamed; the jobs still owed work."""
    if not presets:
        raise UserError("no preset given; e.g. --preset fast")
    budget = DreamBudget(check_dream_budget(max_pixels or DREAM_MAX_PIXELS), fit)
    configs = {name: build_config(name, overrides) for name in presets}
    weights_id, weights_sha256 = weights_identity(
        weights or settings.weights_override, settings.weights_dir
    )
    catalog = open_catalog(settings)
    owed: list[DreamJob] = []
    for name, config in configs.items():
        request = jobs.DreamRequest(
            preset=name,
            params_json=config.canonical_json(),
            params_hash=config.param_hash(),
            weights_id=weights_id,
            weights_sha256=weights_sha256,
            code_version=CODE_VERSION,
            seed=config.seed,
        )
        remaining = None if limit is None else limit - len(owed)
        if remaining is not None and remaining <= 0:
            break
        with catalog.session() as session:
            ids = jobs.plan(session, request, image_ids=image_ids, limit=remaining)
            shas = dict(
                session.execute(
                    select(Stylization.id, Image.sha256)
                    .join(Image, Stylization.image_id == Image.id)
                    .where(Stylization.id.in_(ids))
                ).all()
            )
        owed.extend(
            DreamJob(
                stylization_id=sid,
                image_sha256=shas[sid],
                preset=name,
                config=config,
                params_hash=request.params_hash,
                weights_sha256=request.weights_sha256,
                budget=budget,
            )
            for sid in ids
        )
    return owed


def encode_output(image: Any) -> bytes:
    """PNG when the image has alpha (kept), else high-quality JPEG."""
    buf = io.BytesIO()
    if image.mode in ("RGBA", "LA"):
        image.save(buf, format="PNG", optimize=False)
    else:
        image.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def run_job(
    settings: Settings,
    job: DreamJob,
    *,
    weights: str | None = None,
    flow_run_id: str | None = None,
    lease: timedelta | None = None,
) -> dict[str, Any]:
    """Compute one dream and record it; returns an outcome row for reports.

    The outcome's ``status`` is ``done``, ``skipped`` (another worker has it or it was
    finished meanwhile) or ``failed`` (recorded on the row with its error, retried by a
    later run until it runs out of attempts). The claim's ``lease`` (default
    ``DREAMCRAWL_DREAM_LEASE_S`` or one minute) is renewed while the dream runs.
    """
    from flows.heartbeat import keep_lease

    lease = lease or jobs.lease_from_env()
    catalog = open_catalog(settings)
    with catalog.session() as session:
        if not jobs.claim(session, job.stylization_id, lease=lease, flow_run_id=flow_run_id):
            return {"id": job.stylization_id, "preset": job.preset, "status": "skipped"}
        attempt_no = jobs.attempt(session, job.stylization_id)
    try:
        with keep_lease(catalog, job.stylization_id, attempt_no, lease):
            result, output_key = _dream(catalog, job, settings, weights)
    except Exception as exc:  # recorded on the row, so nothing is lost silently
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        with catalog.session() as session:
            jobs.fail(session, job.stylization_id, error)
        log.warning("dream #%s failed: %s", job.stylization_id, error)
        return {"id": job.stylization_id, "preset": job.preset, "status": "failed", "error": error}
    with catalog.session() as session:
        jobs.complete(
            session,
            job.stylization_id,
            output_key=output_key,
            device=result.device,
            octave_timings=[round(t, 4) for t in result.octave_timings],
            objective_values={
                "before": result.objective_before,
                "after": result.objective_after,
                "octave_shapes": [list(s) for s in result.octave_shapes],
            },
        )
    return {
        "id": job.stylization_id,
        "preset": job.preset,
        "status": "done",
        "seconds": round(sum(result.octave_timings), 3),
        "octave_timings": [round(t, 4) for t in result.octave_timings],
        "device": result.device,
        "output": output_key,
        "objective_before": result.objective_before,
        "objective_after": result.objective_after,
    }


def _dream(catalog: Any, job: DreamJob, settings: Settings, weights: str | None) -> tuple[Any, str]:
    """Read the original, fit it to the budget, dream it, store the output blob."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    from stylize import load_engine
    from stylize.image_io import fit_to_budget

    engine = load_engine(weights or settings.weights_override, settings.weights_dir)
    name = f"image {job.image_sha256[:12]}"
    with catalog.blobs.open(job.image_sha256) as fh, PILImage.open(fh) as opened:
        if not job.budget.fit:  # refused from its header, before decoding
            fit_to_budget(opened, job.budget.max_pixels, False, name)
        picture = ImageOps.exif_transpose(opened)
        picture.load()
    picture = fit_to_budget(picture, job.budget.max_pixels, job.budget.fit, name)
    result = engine.dream(picture, job.config)
    return result, catalog.blobs.put_bytes(encode_output(result.image))
