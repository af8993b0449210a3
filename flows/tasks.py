"""Prefect tasks: each does one thing and receives plain values (ids, paths, settings).

Business logic lives in :mod:`flows.dreaming` and :mod:`crawler`; these wrappers add
what Prefect is for: retries where a retry can help, caching, concurrency slots, logs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext
from prefect.runtime import flow_run
from sqlalchemy import select

from flows.dreaming import DreamJob, DreamOverrides, plan_jobs
from flows.groups import run_group
from storage import jobs as job_queue
from storage.db import open_catalog
from storage.models import CrawlStatus, Sighting, Stylization, StylizationStatus
from storage.settings import Settings


def _dream_cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Content (images, parameters, weights) plus the catalog it is recorded in: a dream
    # cached for another data folder or database has no output blob here.
    group: list[DreamJob] = parameters["group"]
    settings: Settings = parameters["settings"]
    catalog = hashlib.sha256(f"{settings.home}|{settings.db_url}".encode()).hexdigest()[:16]
    content = hashlib.sha256("|".join(job.cache_key for job in group).encode()).hexdigest()
    return f"dream-{content[:32]}-{catalog}"


@task(name="crawl")
def crawl_task(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """Run one crawl in its own process and report it with the image ids it saw."""
    import crawler

    logger = get_run_logger()
    started = time.perf_counter()
    flow_run_id = current_flow_run_id()
    result = crawler.run_crawl(settings=settings, prefect_flow_run_id=flow_run_id, **request)
    if result.status != CrawlStatus.FINISHED:
        # Crawl runs are resumable: one more try continues the same run, no duplicates.
        logger.warning("crawl run #%s ended %s; resuming it once", result.run_id, result.status)
        result = crawler.run_crawl(
            settings=settings, resume=result.run_id, prefect_flow_run_id=flow_run_id
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
    return {
        "crawl_run_id": result.run_id,
        "status": result.status,
        "counts": result.counts,
        "image_ids": image_ids,
        "seconds": round(time.perf_counter() - started, 3),
    }


@task(name="plan-dreams")
def plan_task(
    settings: Settings,
    presets: list[str],
    overrides: DreamOverrides,
    image_ids: list[int] | None,
    limit: int | None,
    weights: str | None,
) -> list[DreamJob]:
    """Create the catalog rows for owed dreams; return the jobs still to compute."""
    owed = plan_jobs(
        settings, presets, overrides=overrides, image_ids=image_ids, limit=limit, weights=weights
    )
    get_run_logger().info("%d dream(s) owed for presets %s", len(owed), ", ".join(presets))
    return owed


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
) -> list[dict[str, Any]]:
    """Dream a group of images with one set of parameters together (model loaded once per
    worker process), each recorded with its own lineage; one outcome per image."""
    from prefect.concurrency.sync import concurrency

    guard = concurrency(slot, occupy=1, strict=True) if slot else contextlib.nullcontext()
    with guard:
        outcomes = run_group(settings, group, weights=weights, flow_run_id=flow_run_id)
    for outcome in outcomes:
        outcome["pid"] = os.getpid()
    if all(outcome["status"] == "failed" for outcome in outcomes):
        # Recorded on the rows already; failing the task keeps it out of Prefect's cache
        # (a group with some dreams done is never planned again as the same group).
        errors = "; ".join(f"#{o['id']}: {o['error']}" for o in outcomes)
        raise RuntimeError(f"every dream of the group failed: {errors}")
    return outcomes


@task(name="record-cached-dreams")
def reconcile_task(settings: Settings, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record dreams that came from Prefect's cache instead of being recomputed.

    A cached outcome whose output blob is gone from the store is marked ``stale``: the
    flow computes it again with the cache refreshed.
    """
    catalog = open_catalog(settings)
    updated = []
    with catalog.session() as session:
        for outcome in outcomes:
            outcome = dict(outcome)
            updated.append(outcome)
            if outcome.get("status") != "done":
                continue
            row = session.get(Stylization, outcome["id"])
            if row is None or row.status == StylizationStatus.DONE:
                continue
            if not outcome.get("output") or not catalog.blobs.exists(outcome["output"]):
                outcome["status"] = "stale"
                continue
            job_queue.complete(
                session,
                row.id,
                output_key=outcome["output"],
                device=outcome.get("device") or "unknown",
                octave_timings=outcome.get("octave_timings") or [],
                objective_values={
                    "before": outcome.get("objective_before"),
                    "after": outcome.get("objective_after"),
                },
            )
            outcome["status"] = "cached"
    return updated


def current_flow_run_id() -> str | None:
    """The id of the flow run this code runs in (None outside a flow)."""
    run_id = flow_run.get_id()
    return str(run_id) if run_id else None
