"""Prefect tasks: each does one thing and receives plain values (ids, paths, settings).

Business logic lives in :mod:`flows.dreaming` and :mod:`crawler`; these wrappers add
what Prefect is for: retries where a retry can help, caching, concurrency slots, logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext
from prefect.runtime import flow_run
from prefect.transactions import get_transaction
from sqlalchemy import select

from crawler.api import CrawlRequest
from flows.dreaming import DreamJob, DreamOutcome, DreamPlan, DreamStatus, plan_jobs
from flows.groups import run_group
from storage import jobs as job_queue
from storage.db import open_catalog
from storage.errors import UserError
from storage.models import CrawlRun, CrawlStatus, Sighting, Stylization, StylizationStatus
from storage.settings import Settings
from stylize.errors import StylizeError
from stylize.params import DreamParams


def _dream_cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Content (image, parameters, weights) plus the catalog it is recorded in: a dream
    # cached for another data folder or database has no output blob here.
    group: list[DreamJob] = parameters["group"]
    settings: Settings = parameters["settings"]
    catalog = hashlib.sha256(f"{settings.home}|{settings.db_url}".encode()).hexdigest()[:16]
    content = hashlib.sha256("|".join(job.cache_key for job in group).encode()).hexdigest()
    return f"dream-{content[:32]}-{catalog}"


@dataclass(frozen=True)
class CrawlReport:
    """One crawl as the flows report it: its run, counts and the images it saw."""

    crawl_run_id: int
    status: CrawlStatus
    counts: dict[str, Any]
    image_ids: list[int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "status": str(self.status)}


def retry_unless_user_error(_task: Any, _run: Any, state: Any) -> bool:
    """Retry I/O failures; a user's mistake fails at once (a retry would fail alike)."""
    try:
        state.result(raise_on_failure=True)
    except (UserError, StylizeError):
        return False
    except BaseException:
        return True
    return True


# Tasks that do I/O retry twice with backoff; a user's mistake is never retried.
IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": retry_unless_user_error,
}


@task(name="crawl", timeout_seconds=6 * 3600, **IO_RETRIES)
def crawl_task(settings: Settings, request: CrawlRequest) -> CrawlReport:
    """Run one crawl in its own process and report it with the image ids it saw.

    A retry (a lost catalog connection, a killed crawler) resumes the same crawl run, so
    nothing is fetched or recorded twice; its progress reaches this run's logs as it goes.
    """
    import crawler

    logger = get_run_logger()
    started = time.perf_counter()
    flow_run_id = current_flow_run_id()

    def progress(counts: dict[str, Any]) -> None:
        logger.info("crawl progress: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))

    resume = None if request.resume is not None else _resumable_run(settings, flow_run_id)
    if resume is not None:
        request = dataclasses.replace(request, resume=resume)
    result = crawler.run_crawl(
        request, settings=settings, prefect_flow_run_id=flow_run_id, on_progress=progress
    )
    if result.status != CrawlStatus.FINISHED:
        # Crawl runs are resumable: one more try continues the same run, no duplicates.
        logger.warning("crawl run #%s ended %s; resuming it once", result.run_id, result.status)
        result = crawler.run_crawl(
            CrawlRequest(resume=result.run_id),
            settings=settings,
            prefect_flow_run_id=flow_run_id,
            on_progress=progress,
        )
    logger.info("crawl run #%s %s: %s", result.run_id, result.status, result.counts)
    if result.status != CrawlStatus.FINISHED:
        raise RuntimeError(f"crawl run #{result.run_id} ended {result.status}: {result.error}")
    catalog = open_catalog(settings)
    with catalog.session() as session:
        image_ids = sorted(
            set(
                session.scalars(
                    select(Sighting.image_id).where(Sighting.crawl_run_id == result.run_id)
                )
            )
        )
    return CrawlReport(
        result.run_id,
        CrawlStatus(result.status),
        result.counts,
        image_ids,
        round(time.perf_counter() - started, 3),
    )


def _resumable_run(settings: Settings, flow_run_id: str | None) -> int | None:
    """The crawl run an earlier try of this flow run left unfinished (a task retry)."""
    if flow_run_id is None:
        return None
    catalog = open_catalog(settings)
    with catalog.session() as session:
        return session.scalar(
            select(CrawlRun.id)
            .where(
                CrawlRun.prefect_flow_run_id == flow_run_id,
                CrawlRun.status != CrawlStatus.FINISHED,
            )
            .order_by(CrawlRun.id.desc())
            .limit(1)
        )


@task(name="label-images")
def label_task(settings: Settings, limit: int | None = None) -> dict[str, Any]:
    """Label the catalog's images the labeller has not seen yet (crawls label their own
    as they go; this catches the rest). Without labeller weights it says so and skips."""
    from crawler.labelling import label_catalog, labeller_available, missing_line
    from storage.labels import unlabelled
    from stylize.label_weights import labeller_id
    from stylize.labels import load_labeller

    logger = get_run_logger()
    if not labeller_available(settings.weights_dir):
        logger.warning("%s", missing_line(settings.weights_dir))
        return {"skipped": "no labeller weights"}
    catalog = open_catalog(settings)
    with catalog.read_session() as session:
        left = unlabelled(session, labeller_id(), limit=1)
    if not left:  # the usual case after a crawl: no need to load the model at all
        logger.info("labels: nothing to label")
        return {}
    counts = label_catalog(catalog, load_labeller(settings.weights_dir), limit=limit)
    logger.info("labels: %s", counts or "nothing to label")
    return counts


@task(name="plan-dreams", timeout_seconds=600, **IO_RETRIES)
def plan_task(
    settings: Settings,
    params: DreamParams,
    image_ids: list[int] | None,
    limit: int | None,
    weights: str | None,
) -> DreamPlan:
    """Create the catalog rows for owed dreams; return the jobs still to compute."""
    plan = plan_jobs(settings, params, image_ids=image_ids, limit=limit, weights=weights)
    presets = ", ".join(str(p) for p in params.presets)
    message = f"{len(plan.jobs)} dream(s) owed for presets {presets}"
    if plan.left:
        message += f"; {plan.left} more left for a later run (limit {limit})"
    get_run_logger().info("%s", message)
    return plan


@task(
    name="dream",
    cache_key_fn=_dream_cache_key,
    persist_result=True,
    task_run_name="dream-{group[0].preset}-{group[0].stylization_id}",
)
def dream_task(
    settings: Settings,
    group: list[DreamJob],
    weights: str | None,
    slot: str | None,
    flow_run_id: str | None,
) -> list[DreamOutcome]:
    """Dream a group of images with one set of parameters together (model loaded once per
    worker process, tiles sharing network calls); each recorded with its own lineage."""
    from prefect.concurrency.sync import concurrency

    guard = concurrency(slot, occupy=1, strict=True) if slot else contextlib.nullcontext()
    with guard:
        # On a Dask worker of another machine: its own data folder and weights, the
        # flow's catalog and blob store.
        here = settings.on_this_machine()
        outcomes = run_group(here, group, weights=weights, flow_run_id=flow_run_id)
    outcomes = [dataclasses.replace(outcome, pid=os.getpid()) for outcome in outcomes]
    if any(outcome.status is not DreamStatus.DONE for outcome in outcomes):
        # "skipped" depends on the catalog's state at this moment (another worker held
        # the row, maybe one that dies): caching it would hand it to every rerun for
        # ever and the row would never be claimed again. Only a group of dreams is cached.
        transaction = get_transaction()
        if transaction is not None:
            transaction.write_on_commit = False
    if all(outcome.status is DreamStatus.FAILED for outcome in outcomes):
        # Recorded on the rows already; failing the task keeps it out of Prefect's cache
        # (a group with a dream done is never planned again as the same group).
        errors = "; ".join(f"#{o.id}: {o.error}" for o in outcomes)
        raise RuntimeError(f"every dream of the group failed: {errors}")
    return outcomes


@task(name="record-cached-dreams")
def reconcile_task(settings: Settings, outcomes: list[DreamOutcome]) -> list[DreamOutcome]:
    """Record dreams that came from Prefect's cache instead of being recomputed.

    A cached outcome whose output blob is gone from the store is marked ``stale``: the
    flow computes it again with the cache refreshed.
    """
    catalog = open_catalog(settings)
    updated = []
    with catalog.session() as session:
        for outcome in outcomes:
            updated.append(_reconcile(session, catalog, outcome))
    return updated


def _reconcile(session: Any, catalog: Any, outcome: DreamOutcome) -> DreamOutcome:
    if outcome.status is not DreamStatus.DONE:
        return outcome
    row = session.get(Stylization, outcome.id)
    if row is None or row.status == StylizationStatus.DONE:
        return outcome
    if not outcome.output or not catalog.blobs.exists(outcome.output):
        return dataclasses.replace(outcome, status=DreamStatus.STALE)
    job_queue.complete(
        session,
        row.id,
        output_key=outcome.output,
        device=outcome.device or "unknown",
        octave_timings=list(outcome.octave_timings),
        objective_values={"before": outcome.objective_before, "after": outcome.objective_after},
    )
    return dataclasses.replace(outcome, status=DreamStatus.CACHED)


def current_flow_run_id() -> str | None:
    """The id of the flow run this code runs in (None outside a flow)."""
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
