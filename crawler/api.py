"""The crawler's Python entry points, shared by the CLI and the Prefect flows.

- :func:`run_crawl` records a crawl run and runs it in a process of its own
  (``python -m crawler.run``), which can be killed on a timeout and resumed later.
- :func:`crawl` is the same for a notebook; :mod:`crawler.file_import` imports the
  user's own files through the same validation and catalog writes.

They raise :class:`~storage.errors.UserError` for bad input, before anything is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crawler.labelling import check_labeller, truthy
from crawler.overrides import parse_overrides
from crawler.progress import parse_line as parse_progress
from crawler.run_lock import lock_run, sweep_dead_runs
from crawler.run_state import run_counts
from storage.db import open_catalog
from storage.errors import UserError
from storage.models import CrawlRun, CrawlStatus, utcnow
from storage.settings import ENV_BLOBS, ENV_DB_URL, ENV_HOME, Settings, get_settings

log = logging.getLogger("dreamcrawl.crawler")

SITE = "site"
STDERR_TAIL = 4000
ProgressCallback = Callable[[dict[str, Any]], None]
TERMINATE_GRACE_S = 30.0


@dataclass(frozen=True)
class CrawlResult:
    """How a crawl (or import) run ended, and what its rows count."""

    run_id: int
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # Set when the run finished but every start URL was refused and no search source
    # ran: nothing could be crawled at all (the CLI says so and exits 2).
    nothing_crawled: str | None = None


def source_names() -> list[str]:
    """Every accepted ``--source`` name."""
    from crawler.sources import SOURCES

    return [SITE, *sorted(SOURCES)]


def clean_keywords(keywords: Iterable[str]) -> list[str]:
    cleaned = [" ".join(k.split()) for k in keywords]
    if not cleaned or not all(cleaned):
        raise UserError("give at least one non-empty --keyword")
    return list(dict.fromkeys(cleaned))


def _check_start_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port outside 0..65535)
    except ValueError as exc:
        detail = f"{exc}; ports are 1..65535"
        raise UserError(f"--start-url {url!r} is not a valid URL ({detail})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--start-url must be an http(s) URL with a host, got {url!r}")
    return url


@dataclass(frozen=True)
class CrawlRequest:
    """What to crawl: the one type from the CLI flags or the flow form to the run row.

    ``sources`` defaults to ``["site"]`` when ``start_urls`` are given. ``resume`` names
    a crawl run to continue (its stored options are used; the others are ignored).
    """

    keywords: tuple[str, ...] = ()
    start_urls: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    max_images: int | None = None
    depth: int | None = None
    allow_private: bool = False
    resume: int | None = None
    # Keep only images whose ImageNet labels show a keyword their text matched
    # (docs/crawler.md#content-check); needs the labeller's weights.
    content_check: bool = False

    def __post_init__(self) -> None:
        # Callers hand over what they have (a flow's lists, a CLI's None): kept as tuples.
        for name in ("keywords", "start_urls", "sources"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))


def run_crawl(
    request: CrawlRequest | None = None,
    /,
    *,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    timeout: float | None = None,
    prefect_flow_run_id: str | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    **fields: Any,
) -> CrawlResult:
    """Crawl sites and/or search sources for images matching the request's keywords.

    Give a :class:`CrawlRequest`, or its fields as keywords (``keywords=["cat"], …``).
    ``overrides`` are Scrapy or DREAMCRAWL_* settings (``NAME=value``). ``timeout``
    seconds, if given, stop the crawl gracefully; the run is then ``interrupted`` and
    can be resumed. ``content_check`` (a request field) needs the labeller's weights and
    refuses to start without them. ``on_progress`` receives the crawl's counts every few seconds
    while it runs (pages, images, duplicates, rejected).
    """
    if request is None:
        request = CrawlRequest(**fields)
    elif fields:
        raise TypeError(f"give a CrawlRequest or its fields, not both: {sorted(fields)}")
    settings = settings or get_settings()
    catalog = open_catalog(settings)
    if request.resume is not None:
        lock = lock_run(settings, request.resume)  # refused while the run's processes live
        try:
            run_id = _reopen(catalog, request.resume, prefect_flow_run_id)
        except BaseException:
            os.close(lock)
            raise
    else:
        sweep_dead_runs(catalog)
        run_id, lock = _create_locked(catalog, request, overrides, prefect_flow_run_id)
    try:
        result = _run_process(catalog, run_id, timeout, on_progress, lock)
    finally:
        os.close(lock)
    if result.status == CrawlStatus.FINISHED:
        result = dataclasses.replace(result, nothing_crawled=_nothing_crawled(catalog, run_id))
    return result


def _nothing_crawled(catalog: Any, run_id: int) -> str | None:
    """Why nothing could be crawled, if the run's only work was start URLs that were all
    refused (the first one's URL, reason and detail); else None."""
    from sqlalchemy import select

    from storage.models import Rejection

    with catalog.read_session() as session:
        run = session.get(CrawlRun, run_id)
        starts = list((run.settings or {}).get("start_urls") or []) if run else []
        if not starts or set(run.sources) != {SITE}:
            return None
        refused = {
            r.url: r
            for r in session.scalars(
                select(Rejection).where(Rejection.crawl_run_id == run_id, Rejection.url.in_(starts))
            )
        }
    if set(refused) != set(starts):
        return None
    first = refused[starts[0]]
    more = f" (and {len(starts) - 1} more start URL(s))" if len(starts) > 1 else ""
    return f"{first.url} was refused: {first.reason}: {first.detail}{more}"


def crawl(
    keywords: Sequence[str],
    *,
    start_urls: Sequence[str] = (),
    sources: Sequence[str] = (),
    max_images: int | None = None,
    depth: int | None = None,
    allow_private: bool = False,
    settings: Settings | None = None,
) -> CrawlResult:
    """Crawl for ``keywords`` from ``start_urls`` (sites) or ``sources`` (e.g. commons).

    The notebook form of ``dreamcrawl crawl``: images go into the catalog of
    ``settings`` (default: DREAMCRAWL_HOME / DREAMCRAWL_DB_URL) and the result has the
    run's id, status and counts.
    """
    request = CrawlRequest(keywords, start_urls, sources, max_images, depth, allow_private)
    return run_crawl(request, settings=settings)


def create_run(
    catalog: Any,
    request: CrawlRequest,
    *,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    prefect_flow_run_id: str | None = None,
) -> int:
    """Validate a crawl request and record it as a ``running`` crawl run; return its id.

    Shared by :func:`run_crawl` and a plain ``scrapy crawl`` (crawler.standalone), so a
    run reads the same in the catalog whichever tool started it. The run's lock is held
    for the rest of this process's life (see crawler.run_lock).
    """
    run_id, lock = _create_locked(catalog, request, overrides, prefect_flow_run_id)
    _HELD[run_id] = lock
    return run_id


_HELD: dict[int, int] = {}  # run id → its lock's descriptor, held until this process ends


def _create_locked(
    catalog: Any,
    request: CrawlRequest,
    overrides: Iterable[str] | Mapping[str, Any] | None,
    prefect_flow_run_id: str | None,
) -> tuple[int, int]:
    overrides = parse_overrides(overrides)
    checks = request.content_check or truthy(overrides.get("DREAMCRAWL_CONTENT_CHECK"))
    return _create(
        catalog,
        keywords=clean_keywords(request.keywords),
        start_urls=[_check_start_url(u) for u in request.start_urls],
        sources=list(request.sources),
        max_images=request.max_images,
        depth=request.depth,
        allow_private=request.allow_private,
        overrides=overrides,
        prefect_flow_run_id=prefect_flow_run_id,
        content_check=checks,
    )


def _create(catalog: Any, *, keywords: list[str], start_urls: list[str], sources: list[str],
            max_images: int | None, depth: int | None, allow_private: bool,
            overrides: dict[str, Any], prefect_flow_run_id: str | None,
            content_check: bool = False) -> tuple[int, int]:  # fmt: skip
    sources = list(dict.fromkeys(sources or ([SITE] if start_urls else [])))
    if not sources:
        raise UserError("give --start-url URL (crawl a site) or --source NAME (search)")
    unknown = [s for s in sources if s not in source_names()]
    if unknown:
        raise UserError(f"unknown source {unknown[0]!r}; accepted: {', '.join(source_names())}")
    if SITE in sources and not start_urls:
        raise UserError("the 'site' source needs at least one --start-url")
    if max_images is not None and max_images < 0:
        raise UserError(f"--max-images must be 0 (no limit) or more, got {max_images}")
    if depth is not None and depth < 0:
        raise UserError(f"--depth must be 0 or more, got {depth}")
    check_labeller(catalog.settings, content_check=content_check, overrides=overrides)
    config = {
        "start_urls": start_urls,
        "depth": depth,
        "max_images": max_images,
        "allow_private": allow_private,
        "overrides": overrides,
        "content_check": content_check,
    }
    with catalog.session() as session:
        run = CrawlRun(
            kind="crawl",
            keywords=keywords,
            sources=sources,
            settings=config,
            status=CrawlStatus.RUNNING,
            prefect_flow_run_id=prefect_flow_run_id,
        )
        session.add(run)
        session.flush()
        # Locked before the row commits: a sweep never sees this run unlocked.
        return int(run.id), lock_run(catalog.settings, int(run.id))


def _reopen(catalog: Any, run_id: int, prefect_flow_run_id: str | None) -> int:
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.kind != "crawl":
            raise UserError(f"there is no crawl run {run_id} to resume")
        if run.status == CrawlStatus.FINISHED:
            raise UserError(f"crawl run {run_id} already finished; start a new crawl instead")
        run.status = CrawlStatus.RUNNING
        run.finished_at = None
        run.error = None
        if prefect_flow_run_id:
            run.prefect_flow_run_id = prefect_flow_run_id
    return run_id


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_HOME] = str(settings.home)
    env[ENV_DB_URL] = settings.db_url
    env[ENV_BLOBS] = settings.blobs
    return env


def _run_process(
    catalog: Any,
    run_id: int,
    timeout: float | None,
    on_progress: ProgressCallback | None,
    lock: int,
) -> CrawlResult:
    """Run the crawler process (and the labeller beside it) and settle the run row."""
    from crawler import label_run

    # Labels come from a process beside the crawl, off its path (crawler.label_run).
    labels = label_run.start(catalog, run_id, _child_env(catalog.settings))
    with label_run.killed_on_error(labels):
        child, reader, tail = _start_crawler(catalog, run_id, lock, on_progress)
        stopped = _wait_for(child, timeout)
        reader.join()
        result = _settle(catalog, run_id, child.returncode, "".join(tail), stopped)
    counts = labels.finish(catalog) if labels is not None else None
    return result if counts is None else dataclasses.replace(result, counts=counts)


def _start_crawler(
    catalog: Any, run_id: int, lock: int, on_progress: ProgressCallback | None
) -> tuple[subprocess.Popen, threading.Thread, deque[str]]:
    """``python -m crawler.run RUN``, with a thread reading its stderr (progress, errors)."""
    command = [sys.executable, "-m", "crawler.run", str(run_id)]
    log.info("crawl run %s: starting %s", run_id, " ".join(command))
    child = subprocess.Popen(
        command,
        env=_child_env(catalog.settings),
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=(lock,),  # the crawler holds the run's lock too, should we be killed
    )
    tail: deque[str] = deque(maxlen=200)
    reader = threading.Thread(
        target=_read_stderr, args=(child, tail, on_progress), name="crawl-stderr", daemon=True
    )
    reader.start()
    return child, reader, tail


def _wait_for(child: subprocess.Popen, timeout: float | None) -> str | None:
    """Wait for the crawler; after ``timeout`` stop it gracefully. Returns why it was
    stopped (None when it ended by itself); on any interruption it is killed."""
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGTERM)  # Scrapy's graceful shutdown
        try:
            child.wait(timeout=TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return f"stopped after the {timeout:g} s timeout"
    except BaseException:
        child.kill()
        child.wait()
        raise
    return None


def _read_stderr(
    child: subprocess.Popen, tail: deque[str], on_progress: ProgressCallback | None
) -> None:
    """Hand progress lines to ``on_progress``; keep the last other lines for errors."""
    assert child.stderr is not None
    for line in child.stderr:
        counts = parse_progress(line)
        if counts is None:
            tail.append(line)
        elif on_progress is not None:
            try:
                on_progress(counts)
            except Exception:  # a reporting problem must not stop the crawl
                log.exception("progress callback failed")


def _settle(
    catalog: Any, run_id: int, returncode: int, stderr: str, stopped: str | None
) -> CrawlResult:
    """Make the run row tell the truth about how the crawler process ended."""
    counts = run_counts(catalog, run_id)  # before the write transaction: SQLite has one
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        if run.status == CrawlStatus.RUNNING or stopped:
            if stopped or returncode < 0:
                run.status = CrawlStatus.INTERRUPTED
                run.error = stopped or f"crawler process killed by signal {-returncode}"
            else:
                run.status = CrawlStatus.FAILED
                run.error = stderr.strip()[-STDERR_TAIL:] or f"crawler exited with {returncode}"
            run.finished_at = utcnow()
            run.counts = {**counts, "process": run.counts.get("process")}
        return CrawlResult(run_id, run.status, dict(run.counts), run.error)
