"""The three flows: ``crawl``, ``stylize`` and ``pipeline`` (crawl, then stylize).

Each reads like the data-flow diagram; parameters carry types, defaults and
descriptions (from the docstrings) so the Prefect UI shows a proper form.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.artifacts import publish_report
from flows.dreaming import DreamJob, DreamOverrides
from flows.groups import group_jobs
from flows.tasks import crawl_task, current_flow_run_id, dream_task, plan_task, reconcile_task
from storage.settings import Settings, get_settings

DEFAULT_PRESETS = ["fast"]


def _task_runner(dask_workers: int, dask_address: str | None) -> Any:
    """Dask when asked for (a LocalCluster, or a running cluster's address), else in-process."""
    if dask_address or dask_workers > 0:
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "processes": True}
        )
    # TensorFlow already uses every core (or the GPU) for one group of dreams: one group
    # at a time, its images batched together inside the engine.
    return ThreadPoolTaskRunner(max_workers=1)


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
) -> list[dict[str, Any]]:
    """Dream every job on this flow's task runner, images with the same parameters in
    groups (``Engine.dream_many``); failures are reported, not raised."""
    task = dream_task.with_options(refresh_cache=refresh_cache) if refresh_cache else dream_task
    groups = group_jobs(jobs)
    futures = task.map(settings, groups, weights, slot, flow_run_id)
    outcomes = []
    for group, future in zip(groups, futures, strict=True):
        state = future.wait() or future.state
        if state.is_completed():
            outcomes += [dict(outcome) for outcome in future.result()]
        else:
            error = str(state.message or state.name)
            outcomes += [
                {"id": job.stylization_id, "preset": job.preset, "status": "failed", "error": error}
                for job in group
            ]
    return outcomes


def _stylize(
    settings: Settings,
    presets: list[str],
    overrides: DreamOverrides,
    image_ids: list[int] | None,
    limit: int | None,
    weights: str | None,
    dask_workers: int,
    dask_address: str | None,
    gpu_slot: str,
) -> list[dict[str, Any]]:
    jobs = plan_task(settings, presets, overrides, image_ids, limit, weights)
    if not jobs:
        return []
    runner = _task_runner(dask_workers, dask_address)
    slot = _gpu_slot(gpu_slot)
    if slot:
        from flows.limits import ensure_limit

        ensure_limit(slot, 1)
    # Lineage names the flow run the operator started, not this internal sub-flow.
    parent = current_flow_run_id()
    batch = dream_batch.with_options(task_runner=runner)
    outcomes = reconcile_task(settings, batch(settings, jobs, weights, slot, parent))
    stale = {o["id"] for o in outcomes if o["status"] == "stale"}
    if stale:
        redo = [job for job in jobs if job.stylization_id in stale]
        fresh = {o["id"]: o for o in batch(settings, redo, weights, slot, parent, True)}
        outcomes = [fresh.get(o["id"], o) for o in outcomes]
    return outcomes


@flow(name="stylize", log_prints=True)
def stylize_flow(
    presets: list[str] = DEFAULT_PRESETS,
    layers: str | None = None,
    channel: str | None = None,
    octaves: int | None = None,
    octave_scale: float | None = None,
    steps: int | None = None,
    step_size: float | None = None,
    tile: int | None = None,
    seed: int | None = None,
    limit: int | None = None,
    image_ids: list[int] | None = None,
    weights: str | None = None,
    dask_workers: int = 0,
    dask_address: str | None = None,
    gpu_slot: str = "auto",
) -> dict[str, Any]:
    """Dream catalog images not yet dreamed with these parameters and weights.

    Args:
        presets: preset names (fast, classic, paper-single-channel, paper-multilayer,
            paper-octave, tf-tutorial, keras-example); one dream per image per preset.
        layers: replace the preset's layers, e.g. "mixed3,mixed5" or "mixed4=1.0,mixed5=1.5".
        channel: one channel of one layer instead, e.g. "mixed4:97".
        octaves: number of scales (each at least 75 px).
        octave_scale: ratio between scales (> 1).
        steps: gradient-ascent steps per octave.
        step_size: step size on [-1, 1] pixels after gradient normalization.
        tile: tile size in px (bounded memory for any image size).
        seed: random seed (jitter, noise start); same seed, same CPU output.
        limit: dream at most this many images in this run.
        image_ids: only these catalog image ids.
        weights: an InceptionV3 weights file (default: resolved as `dreamcrawl weights info`).
        dask_workers: fan out over a local Dask cluster with this many worker processes.
        dask_address: or the address of a running Dask scheduler (tcp://host:8786).
        gpu_slot: Prefect concurrency limit taken per dream: auto ("gpu" when a GPU is
            present), none, or a limit name.
    """
    settings = get_settings()
    overrides = DreamOverrides(layers, channel, octaves, octave_scale, steps, step_size, tile, seed)
    outcomes = _stylize(
        settings,
        presets,
        overrides,
        image_ids,
        limit,
        weights,
        dask_workers,
        dask_address,
        gpu_slot,
    )
    summary = publish_report("stylize", None, outcomes, str(settings.home))
    get_run_logger().info("stylize: %s", summary)
    return {"summary": summary, "outcomes": outcomes}


@flow(name="crawl", log_prints=True)
def crawl_flow(
    keywords: list[str],
    start_urls: list[str] | None = None,
    sources: list[str] | None = None,
    max_images: int = 50,
    depth: int = 2,
    allow_private: bool = False,
    resume: int | None = None,
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
    """
    settings = get_settings()
    crawl = crawl_task(settings, _crawl_request(locals()))
    summary = publish_report("crawl", crawl, [], str(settings.home))
    return {"crawl": crawl, "summary": summary}


@flow(name="pipeline", log_prints=True)
def pipeline_flow(
    keywords: list[str],
    start_urls: list[str] | None = None,
    sources: list[str] | None = None,
    max_images: int = 20,
    depth: int = 2,
    allow_private: bool = False,
    presets: list[str] = DEFAULT_PRESETS,
    steps: int | None = None,
    octaves: int | None = None,
    weights: str | None = None,
    dask_workers: int = 0,
    gpu_slot: str = "auto",
) -> dict[str, Any]:
    """Crawl for the keywords, then dream every image the crawl found.

    Args:
        keywords: what the images should show, e.g. ["cat", "kitten"].
        start_urls: pages to start from (links are followed inside their domains).
        sources: keyword search sources, e.g. ["commons"].
        max_images: stop the crawl after accepting this many images.
        depth: how many links deep to follow from the start pages.
        allow_private: allow loopback and private addresses (local test sites).
        presets: preset names to dream each found image with.
        steps: override the presets' steps per octave.
        octaves: override the presets' octave count.
        weights: an InceptionV3 weights file (default: resolved automatically).
        dask_workers: fan the dreams out over a local Dask cluster of this many workers.
        gpu_slot: Prefect concurrency limit per dream: auto, none, or a limit name.
    """
    settings = get_settings()
    crawl = crawl_task(settings, _crawl_request(locals()))
    overrides = DreamOverrides(steps=steps, octaves=octaves)
    outcomes = _stylize(
        settings,
        presets,
        overrides,
        crawl["image_ids"],
        None,
        weights,
        dask_workers,
        None,
        gpu_slot,
    )
    summary = publish_report("pipeline", crawl, outcomes, str(settings.home))
    return {"crawl": crawl, "summary": summary, "outcomes": outcomes}


def _crawl_request(params: dict[str, Any]) -> dict[str, Any]:
    names = ("keywords", "start_urls", "sources", "max_images", "depth", "allow_private", "resume")
    return {name: params[name] for name in names if params.get(name) is not None}
