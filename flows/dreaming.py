"""Dreaming catalog images: the work behind ``dreamcrawl stylize`` and the Prefect flows.

It turns a request (presets or explicit parameters) into :class:`DreamJob` values, one
per image still owed a dream; :mod:`flows.groups` computes them, several images with the
same parameters at a time: claim each row, read the original blob, dream, store the
output blob, record the lineage. Jobs carry ids and plain values only, so any Prefect
task runner (threads, Dask workers) can ship them.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from storage import jobs
from storage.db import open_catalog
from storage.errors import UserError
from storage.models import Image, Stylization
from storage.settings import Settings
from storage.version import __version__
from stylize.weights import weights_identity

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
class DreamJob:
    """One owed dream: the catalog row to fill and everything needed to compute it."""

    stylization_id: int
    image_sha256: str
    preset: str
    config: Any  # stylize.DreamConfig (a frozen dataclass: picklable for Dask)
    params_hash: str
    weights_sha256: str

    @property
    def cache_key(self) -> str:
        """Same image, parameters and weights: same dream (Prefect's cache key)."""
        return f"dream-{self.image_sha256}-{self.params_hash}-{self.weights_sha256}"


def plan_jobs(
    settings: Settings,
    presets: Sequence[str],
    *,
    overrides: DreamOverrides | None = None,
    image_ids: Sequence[int] | None = None,
    limit: int | None = None,
    weights: str | None = None,
) -> list[DreamJob]:
    """Rows for every (image, preset) not yet dreamed; the jobs still owed work."""
    if not presets:
        raise UserError("no preset given; e.g. --preset fast")
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
