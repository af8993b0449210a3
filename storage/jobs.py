"""The stylization queue: which dreams are owed, who is computing them, what happened.

A dream is a ``stylizations`` row keyed by (image, parameter hash, weights sha256).
Planning inserts ``pending`` rows for images that lack one (``ON CONFLICT DO NOTHING``,
so concurrent planners agree); a worker then *claims* a row with an atomic conditional
UPDATE that also sets a short lease, which the worker renews (:func:`renew`, a
heartbeat) while it dreams. A worker that dies leaves its row ``running`` with a lease
that runs out within :data:`DEFAULT_LEASE`, after which any worker may claim it again.
Failed rows are retried until ``max_attempts``. So a re-run of the same request
computes nothing already done, and a crashed run's leftovers are picked up by the next.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from storage.errors import UserError
from storage.models import Image, ImageStatus, Stylization, StylizationStatus, utcnow
from storage.records import dialect_insert

# Short, because the worker renews it every third of it (flows.dreaming's heartbeat): a
# dead worker holds its row at most this long. DREAMCRAWL_DREAM_LEASE_S overrides it.
DEFAULT_LEASE = timedelta(seconds=60)
ENV_LEASE = "DREAMCRAWL_DREAM_LEASE_S"


def lease_from_env(env: Mapping[str, str] | None = None) -> timedelta:
    """The dream lease: ``DREAMCRAWL_DREAM_LEASE_S`` seconds, else :data:`DEFAULT_LEASE`."""
    value = (os.environ if env is None else env).get(ENV_LEASE, "").strip()
    if not value:
        return DEFAULT_LEASE
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 1 <= seconds <= 86_400:
        raise UserError(f"{ENV_LEASE} must be a number of seconds in 1..86400, got {value!r}")
    return timedelta(seconds=seconds)


DEFAULT_MAX_ATTEMPTS = 3


def worker_identity() -> str:
    """Who holds a claim: ``host:pid`` of this process (what ``catalog list`` shows in
    ``held_by``, so an operator can find the worker, or see that it is gone)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class DreamRequest:
    """One parameter set and one weights file to apply to catalog images."""

    preset: str | None
    params_json: str
    params_hash: str
    weights_id: str
    weights_sha256: str
    code_version: str
    seed: int | None


def _claimable(now: datetime, max_attempts: int) -> Any:
    return or_(
        Stylization.status == StylizationStatus.PENDING,
        and_(Stylization.status == StylizationStatus.FAILED, Stylization.attempts < max_attempts),
        and_(Stylization.status == StylizationStatus.RUNNING, Stylization.lease_expires_at < now),
    )


def plan(
    session: Session,
    request: DreamRequest,
    *,
    image_ids: Sequence[int] | None = None,
    limit: int | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[int]:
    """Ensure a row exists for each image; return the ids of rows that still need work.

    Images already dreamed with this request (``done``) are skipped: that is what
    makes re-runs free. ``limit`` caps how many rows are returned, and no row is planned
    beyond it: a ``--limit`` run leaves no ``pending`` rows for images it will not
    dream (:func:`owed` counts what is left for later).
    """
    todo = _todo(request, image_ids, max_attempts)
    if limit is not None:
        todo = todo.limit(limit)
    ready = list(session.scalars(todo))
    room = None if limit is None else limit - len(ready)
    missing = (
        [] if room is not None and room <= 0 else _unplanned(session, request, image_ids, room)
    )
    if missing:
        rows = [
            {
                "image_id": image_id,
                "preset": request.preset,
                "params_json": request.params_json,
                "params_hash": request.params_hash,
                "weights_id": request.weights_id,
                "weights_sha256": request.weights_sha256,
                "code_version": request.code_version,
                "seed": request.seed,
                "status": StylizationStatus.PENDING,
                "attempts": 0,
                "octave_timings": [],
                "objective_values": {},
                "created_at": utcnow(),
            }
            for image_id in missing
        ]
        stmt = dialect_insert(session, Stylization.__table__).on_conflict_do_nothing(
            index_elements=["image_id", "params_hash", "weights_sha256"]
        )
        session.execute(stmt, rows)
        todo = _todo(request, image_ids, max_attempts)
        if limit is not None:
            todo = todo.limit(limit)
        ready = list(session.scalars(todo))
    return ready


def owed(
    session: Session,
    request: DreamRequest,
    *,
    image_ids: Sequence[int] | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """How many images still owe this dream (claimable rows plus images without one)."""
    claimable = session.scalar(
        select(func.count()).select_from(_todo(request, image_ids, max_attempts).subquery())
    )
    return int(claimable or 0) + len(_unplanned(session, request, image_ids, None))


def _todo(request: DreamRequest, image_ids: Sequence[int] | None, max_attempts: int) -> Any:
    """The request's rows a worker may claim now, oldest first."""
    todo = (
        select(Stylization.id)
        .where(
            Stylization.params_hash == request.params_hash,
            Stylization.weights_sha256 == request.weights_sha256,
            _claimable(utcnow(), max_attempts),
        )
        .order_by(Stylization.id)
    )
    if image_ids is not None:
        todo = todo.where(Stylization.image_id.in_(list(image_ids)))
    return todo


def _unplanned(
    session: Session, request: DreamRequest, image_ids: Sequence[int] | None, limit: int | None
) -> list[int]:
    """Ids of usable images with no row for this request yet (at most ``limit``)."""
    images = select(Image.id).where(Image.status == ImageStatus.OK).order_by(Image.id)
    if image_ids is not None:
        images = images.where(Image.id.in_(list(image_ids)))
    existing = select(Stylization.image_id).where(
        Stylization.params_hash == request.params_hash,
        Stylization.weights_sha256 == request.weights_sha256,
    )
    query = images.where(Image.id.not_in(existing))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def claim(
    session: Session,
    stylization_id: int,
    *,
    lease: timedelta = DEFAULT_LEASE,
    flow_run_id: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> bool:
    """Take the row for this worker; False if another worker has it or it is done."""
    now = utcnow()
    result = session.execute(
        update(Stylization)
        .where(Stylization.id == stylization_id, _claimable(now, max_attempts))
        .values(
            status=StylizationStatus.RUNNING,
            lease_expires_at=now + lease,
            started_at=now,
            attempts=Stylization.attempts + 1,
            prefect_flow_run_id=flow_run_id,
            lease_holder=worker_identity(),
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def attempt(session: Session, stylization_id: int) -> int:
    """The attempt number of the row's current claim (what :func:`renew` checks)."""
    return int(session.get_one(Stylization, stylization_id).attempts)


def renew(session: Session, stylization_id: int, attempt_no: int, lease: timedelta) -> bool:
    """Extend the lease of this worker's claim; False if the row is no longer its own
    (finished, or taken over after the lease ran out)."""
    result = session.execute(
        update(Stylization)
        .where(
            Stylization.id == stylization_id,
            Stylization.status == StylizationStatus.RUNNING,
            Stylization.attempts == attempt_no,
        )
        .values(lease_expires_at=utcnow() + lease)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def complete(
    session: Session,
    stylization_id: int,
    *,
    output_key: str,
    device: str,
    octave_timings: list[float],
    objective_values: dict[str, Any],
) -> None:
    """Record a finished dream and its output blob."""
    session.execute(
        update(Stylization)
        .where(Stylization.id == stylization_id)
        .values(
            status=StylizationStatus.DONE,
            output_blob_key=output_key,
            output_sha256=output_key,
            device=device,
            octave_timings=octave_timings,
            objective_values=objective_values,
            lease_expires_at=None,
            finished_at=utcnow(),
            error=None,
        )
    )


def fail(session: Session, stylization_id: int, error: str) -> None:
    """Record a failed attempt; the row is retried until it runs out of attempts."""
    session.execute(
        update(Stylization)
        .where(Stylization.id == stylization_id)
        .values(
            status=StylizationStatus.FAILED,
            error=error[:2000],
            lease_expires_at=None,
            finished_at=utcnow(),
        )
    )


def release(session: Session, flow_run_id: str) -> int:
    """Hand back every row a flow run still holds (it was cancelled or crashed).

    The rows become ``pending`` at once instead of waiting for their lease to expire,
    and the interrupted attempt does not count against the row's retries.
    """
    result = session.execute(
        update(Stylization)
        .where(
            Stylization.status == StylizationStatus.RUNNING,
            Stylization.prefect_flow_run_id == flow_run_id,
        )
        .values(
            status=StylizationStatus.PENDING,
            lease_expires_at=None,
            attempts=func.max(Stylization.attempts - 1, 0)
            if session.get_bind().dialect.name == "sqlite"
            else func.greatest(Stylization.attempts - 1, 0),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
