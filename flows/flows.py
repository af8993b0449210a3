"""The three flows: ``crawl``, ``stylize`` and ``pipeline`` (crawl, then stylize).

Each reads like the data-flow diagram. Dream parameters are one typed object,
:class:`~stylize.params.DreamParams`, which Prefect renders as a nested form (presets and
layers as dropdowns, each field described). A user's mistake ends the run with one line
in its state message and log, never a traceback; a cancelled or crashed run hands its
images back at once (:mod:`flows.hooks`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy import exc as sa_exc

from crawler.api import CrawlRequest
from flows.artifacts import DreamProgress, publish_report
from flows.dreaming import DreamJob, DreamOutcome, DreamStatus
from flows.groups import DEFAULT_GROUP_SIZE, group_jobs
from flows.hooks import release_held_dreams
from flows.tasks import (
    CrawlReport,
    crawl_task,
    current_flow_run_id,
    dream_task,
    label_task,
    plan_task,
    reconcile_task,
)
from storage.db import catalog_failure
from storage.errors import StoreUnavailable, UserError
from storage.settings import Settings, get_settings
from stylize.errors import StylizeError
from stylize.params import DreamParams

USER_ERRORS = (UserError, StylizeError)
# Stores down or full: not a bug either, and the run says so in one line.
STORE_ERRORS = (StoreUnavailable, sa_exc.OperationalError, sa_exc.InterfaceError)
# A flow that claims dreams hands them back when Prefect knows it ended early.
HAND_BACK_ON_EARLY_END: dict[str, Any] = {
    "on_cancellation": [release_held_dreams],
    "on_crashed": [release_held_dreams],
}


def one_line_failures(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A user's mistake, or a catalog or blob store that is down or full, fails the run
    with one line; bugs keep tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS + STORE_ERRORS as exc:
            if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
                message = catalog_failure(exc, get_settings().db_url)
            else:
                message = " ".join(str(exc).split())
            get_run_logger().error("%s", message)
            # The state message is the one line the UI shows; the exception rides along
            # so a caller in this process (the CLI) can re-raise it as exit code 2.
            return Failed(message=message, data=exc)

    return wrapper


def _task_runner(dask_workers: int, dask_address: str | None) -> Any:
    """Dask when asked for (a LocalCluster, or a running cluster's address), else in-process."""
    if dask_address or dask_workers > 0:
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "processes": True}
        )
    # TensorFlow already uses every core for one dream: run dreams one at a time.
    return ThreadPoolTaskRunner(max_workers=1)


def _group_size(jobs: int, dask_workers: int, dask_address: str | None) -> int:
    """Images per group: the default in one process; over Dask, small enough that every
    worker gets a group (a group runs on one worker)."""
    if not (dask_workers or dask_address):
        return DEFAULT_GROUP_SIZE
    workers = dask_workers or _scheduler_workers(dask_address)
    return max(1, min(DEFAULT_GROUP_SIZE, math.ceil(jobs / max(1, workers))))


def _scheduler_workers(address: str | None) -> int:
    """How many workers the Dask scheduler at ``address`` has now (at least 1)."""
    from distributed import Client

    with Client(address, timeout=30) as client:
        return max(1, len(client.scheduler_info().get("workers", {})))


def _gpu_slot(gpu_slot: str) -> str | None:
    """ "auto": the ``gpu`` concurrency limit when a GPU is visible; "none"; or a name."""
    if gpu_slot == "none":
        return None
    if gpu_slot != "auto":
        return gpu_slot
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else None


@flow(name="dream-batch")
def dream_batch(
    settings: Settings,
    jobs: list[DreamJob],
    weights: str | None,
    slot: str | None,
    flow_run_id: str | None,
    refresh_cache: bool = False,
    progress_id: UUID | None = None,
    run_name: str | None = None,
    group_size: int = DEFAULT_GROUP_SIZE,
) -> list[DreamOutcome]:
    """Dream every job on this flow's task runner; failures are reported, not raised.

    ``progress_id`` and ``run_name`` are the started run's progress artifact and name
    (see DreamProgress); ``group_size`` images at most share one ``dream_many`` call.
    """
    task = dream_task.with_options(refresh_cache=refresh_cache) if refresh_cache else dream_task
    groups = group_jobs(jobs, group_size)  # same parameters together: Engine.dream_many
    futures = task.map(settings, groups, weights, slot, flow_run_id)
    group_of = {future.task_run_id: group for future, group in zip(futures, groups, strict=True)}
    progress = DreamProgress(len(jobs), flow_run_id, progress_id, run_name)
    outcomes: dict[int, DreamOutcome] = {}
    for future in as_completed(list(futures)):
        group = group_of[future.task_run_id]
        future.wait()  # as_completed may yield before the future's state is final
        state = future.state
        if state.is_completed():
            done = list(future.result())
        else:
            error = str(state.message or state.name)
            done = [
                DreamOutcome(
                    job.stylization_id,
                    job.preset,
                    DreamStatus.FAILED,
                    error=error,
                    image_sha256=job.image_sha256,
                )
                for job in group
            ]
        for job, outcome in zip(group, done, strict=True):
            outcomes[job.stylization_id] = outcome
            progress.advance(outcome)
    return [outcomes[job.stylization_id] for job in jobs]


def _stylize(
    settings: Settings,
    params: DreamParams,
    image_ids: list[int] | None,
    limit: int | None,
    weights: str | None,
    dask_workers: int,
    dask_address: str | None,
    gpu_slot: str,
) -> tuple[list[DreamOutcome], int]:
    """Plan and dream; return the outcomes and how many owed dreams were left for later."""
    params.configs()  # a bad value fails here, in the first second, before TensorFlow
    plan = plan_task(settings, params, image_ids, limit, weights)
    if not plan.jobs:
        return [], plan.left
    runner = _task_runner(dask_workers, dask_address)
    size = _group_size(len(plan.jobs), dask_workers, dask_address)
    slot = _gpu_slot(gpu_slot)
    if slot:
        from flows.limits import ensure_limit

        ensure_limit(slot, 1)
    # Lineage names the flow run the operator started, not this internal sub-flow.
    parent = current_flow_run_id()
    name = flow_run.get_name()
    progress = DreamProgress(len(plan.jobs), parent, flow_run_name=name).artifact_id
    batch = dream_batch.with_options(task_runner=runner)
    outcomes = reconcile_task(
        settings,
        batch(
            settings,
            plan.jobs,
            weights,
            slot,
            parent,
            progress_id=progress,
            run_name=name,
            group_size=size,
        ),
    )
    stale = {o.id for o in outcomes if o.status is DreamStatus.STALE}
    if stale:
        redo = [job for job in plan.jobs if job.stylization_id in stale]
        fresh = {o.id: o for o in batch(settings, redo, weights, slot, parent, True)}
        outcomes = [fresh.get(o.id, o) for o in outcomes]
    return outcomes, plan.left


@flow(name="stylize", log_prints=True, **HAND_BACK_ON_EARLY_END)
@one_line_failures
def stylize_flow(
    dream: DreamParams = DreamParams(),  # noqa: B008 (frozen: one shared default is safe)
    limit: int | None = None,
    image_ids: list[int] | None = None,
    weights: str | None = None,
    dask_workers: int = 0,
    dask_address: str | None = None,
    gpu_slot: str = "auto",
) -> dict[str, Any]:
    """Dream catalog images not yet dreamed with these parameters and weights.

    Args:
        dream: presets and the values that replace theirs (empty keeps the preset's).
        limit: dream at most this many images in this run (empty: all that are owed).
        image_ids: only these catalog image ids (empty: every image).
        weights: an InceptionV3 weights file (empty: resolved as `dreamcrawl weights info`).
        dask_workers: fan out over a local Dask cluster with this many worker processes.
        dask_address: or the address of a running Dask scheduler (tcp://host:8786).
        gpu_slot: Prefect concurrency limit taken per dream: auto ("gpu" when a GPU is
            present), none, or a limit name.
    """
    settings = get_settings()
    outcomes, left = _stylize(
        settings, dream, image_ids, limit, weights, dask_workers, dask_address, gpu_slot
    )
    summary = publish_report("stylize", settings, None, outcomes, left)
    get_run_logger().info("stylize: %s", summary)
    return {"summary": summary, "outcomes": [o.as_dict() for o in outcomes]}


@flow(name="crawl", log_prints=True)
@one_line_failures
def crawl_flow(
    keywords: list[str],
    start_urls: list[str] | None = None,
    sources: list[str] | None = None,
    max_images: int = 50,
    depth: int = 2,
    allow_private: bool = False,
    resume: int | None = None,
    content_check: bool = False,
) -> dict[str, Any]:
    """Crawl sites or a keyword search source for images matching the keywords.

    Args:
        keywords: what the images should show, e.g. ["cat", "kitten"].
        start_urls: pages to start from (links are followed inside their domains).
        sources: keyword search sources instead of (or besides) sites, e.g. ["commons"].
        max_images: stop after accepting this many images.
        depth: how many links deep to follow from the start pages.
        allow_private: allow loopback and private addresses (local test sites).
        resume: continue an interrupted crawl run by its id.
        content_check: keep an image only if its ImageNet labels show a keyword its text
            matched (needs the labeller's weights).
    """
    settings = get_settings()
    request = CrawlRequest(
        keywords, start_urls, sources, max_images, depth, allow_private, resume, content_check
    )
    crawl: CrawlReport = crawl_task(settings, request)
    labels = label_task(settings)  # what the crawl left unlabelled, if anything
    summary = publish_report("crawl", settings, crawl, [], 0)
    return {"crawl": crawl.as_dict(), "labels": labels, "summary": summary}


@flow(name="pipeline", log_prints=True, **HAND_BACK_ON_EARLY_END)
@one_line_failures
def pipeline_flow(
    keywords: list[str],
    start_urls: list[str] | None = None,
    sources: list[str] | None = None,
    max_images: int = 20,
    depth: int = 2,
    allow_private: bool = False,
    dream: DreamParams = DreamParams(),  # noqa: B008 (frozen: one shared default is safe)
    weights: str | None = None,
    dask_workers: int = 0,
    gpu_slot: str = "auto",
    dream_deployment: str | None = None,
    content_check: bool = False,
) -> dict[str, Any]:
    """Crawl for the keywords, then dream every image the crawl found.

    Args:
        keywords: what the images should show, e.g. ["cat", "kitten"].
        start_urls: pages to start from (links are followed inside their domains).
        sources: keyword search sources, e.g. ["commons"].
        max_images: stop the crawl after accepting this many images.
        depth: how many links deep to follow from the start pages.
        allow_private: allow loopback and private addresses (local test sites).
        dream: presets and the values that replace theirs (empty keeps the preset's).
        weights: an InceptionV3 weights file (empty: resolved automatically).
        dask_workers: fan the dreams out over a local Dask cluster of this many workers.
        gpu_slot: Prefect concurrency limit per dream: auto, none, or a limit name.
        dream_deployment: hand the dreams to this deployment (e.g. "stylize/stylize" on
            the dream work pool, see `dreamcrawl deploy`) instead of this flow's process.
        content_check: keep an image only if its ImageNet labels show a keyword its text
            matched (needs the labeller's weights).
    """
    settings = get_settings()
    dream.configs()  # a bad value fails before the crawl, not after it
    request = CrawlRequest(
        keywords, start_urls, sources, max_images, depth, allow_private, None, content_check
    )
    crawl: CrawlReport = crawl_task(settings, request)
    if dream_deployment:
        from flows.handoff import dream_elsewhere

        parameters = {
            "dream": dream.model_dump(mode="json", exclude_none=True),
            "image_ids": crawl.image_ids,
            "weights": weights,
            "dask_workers": dask_workers,
            "gpu_slot": gpu_slot,
        }
        outcomes, left = dream_elsewhere(settings, dream_deployment, parameters), 0
    else:
        outcomes, left = _stylize(
            settings, dream, crawl.image_ids, None, weights, dask_workers, None, gpu_slot
        )
    summary = publish_report("pipeline", settings, crawl, outcomes, left)
    return {
        "crawl": crawl.as_dict(),
        "summary": summary,
        "outcomes": [o.as_dict() for o in outcomes],
    }
