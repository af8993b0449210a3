"""Dreaming catalog images: the work behind ``dreamcrawl stylize`` and the Prefect flows.

It turns a request (:class:`stylize.params.DreamParams`) into :class:`DreamJob` values,
one per image still owed a dream; :mod:`flows.groups` computes them: claim the row, read
the original blob, dream it, store the output blob, record the lineage. Jobs carry ids
and frozen values only, so any Prefect task runner (threads, Dask workers) can ship them.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from storage import jobs
from storage.db import open_catalog
from storage.models import Image, Stylization
from storage.settings import Settings
from storage.version import __version__
from stylize.config import DreamConfig
from stylize.params import DreamParams
from stylize.weights import weights_identity

log = logging.getLogger("dreamcrawl.flows.dreaming")

CODE_VERSION = __version__


class DreamStatus(StrEnum):
    """What became of one owed dream in this run."""

    DONE = "done"  # computed and recorded now
    SKIPPED = "skipped"  # another worker holds it, or it was finished meanwhile
    FAILED = "failed"  # recorded on the row with its error; retried by a later run
    CACHED = "cached"  # Prefect's cache had it: recorded without computing
    STALE = "stale"  # the cache had it but its output blob is gone: computed again


@dataclass(frozen=True)
class DreamOutcome:
    """One dream's result, as the flows report it (artifacts, logs, the CLI's JSON)."""

    id: int
    preset: str
    status: DreamStatus
    error: str | None = None
    seconds: float | None = None
    octave_timings: tuple[float, ...] = ()
    device: str | None = None
    output: str | None = None
    objective_before: float | None = None
    objective_after: float | None = None
    width: int | None = None
    height: int | None = None
    image_sha256: str | None = None
    pid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = str(self.status)
        data["octave_timings"] = list(self.octave_timings)
        return data


@dataclass(frozen=True)
class DreamJob:
    """One owed dream: the catalog row to fill and everything needed to compute it."""

    stylization_id: int
    image_sha256: str
    preset: str
    params: DreamParams  # what the user asked for, unchanged from the CLI or the UI
    config: DreamConfig  # ``params.config(preset)``: what the engine runs and the row records
    params_hash: str
    weights_sha256: str

    @property
    def cache_key(self) -> str:
        """Same image, parameters and weights: same dream (Prefect's cache key)."""
        return f"dream-{self.image_sha256}-{self.params_hash}-{self.weights_sha256}"


@dataclass(frozen=True)
class DreamPlan:
    """The jobs a run will compute, and how many owed dreams it leaves for later."""

    jobs: list[DreamJob]
    left: int = 0


def _request(name: str, config: DreamConfig, weights_id: str, weights_sha256: str) -> Any:
    return jobs.DreamRequest(
        preset=name,
        params_json=config.canonical_json(),
        params_hash=config.param_hash(),
        weights_id=weights_id,
        weights_sha256=weights_sha256,
        code_version=CODE_VERSION,
        seed=config.seed,
    )


def plan_jobs(
    settings: Settings,
    params: DreamParams,
    *,
    image_ids: Sequence[int] | None = None,
    limit: int | None = None,
    weights: str | None = None,
) -> DreamPlan:
    """Rows for the (image, preset) pairs this run will dream; the jobs still owed work.

    Parameters are validated first (one line, before the weights are read); no row is
    planned beyond ``limit``, and the plan says how many owed dreams remain.
    """
    configs = params.configs()
    weights_id, weights_sha256 = weights_identity(
        weights or settings.weights_override, settings.weights_dir
    )
    catalog = open_catalog(settings)
    owed: list[DreamJob] = []
    left = 0
    for name, config in configs.items():
        request = _request(name, config, weights_id, weights_sha256)
        remaining = None if limit is None else limit - len(owed)
        with catalog.session() as session:
            ids = (
                []
                if remaining == 0
                else jobs.plan(session, request, image_ids=image_ids, limit=remaining)
            )
            if limit is not None:
                left += jobs.owed(session, request, image_ids=image_ids) - len(ids)
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
                params=params,
                config=config,
                params_hash=request.params_hash,
                weights_sha256=request.weights_sha256,
            )
            for sid in ids
        )
    return DreamPlan(owed, left)


def encode_output(image: Any) -> bytes:
    """PNG when the image has alpha (kept), else high-quality JPEG."""
    buf = io.BytesIO()
    if image.mode in ("RGBA", "LA"):
        image.save(buf, format="PNG", optimize=False)
    else:
        image.convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()
