"""The crawler process of one crawl run, seen from the command that started it.

:func:`run_process` starts ``python -m crawler.run RUN`` (and the labeller beside it),
hands its progress lines to a callback, stops it gracefully on a timeout, and makes the
run row tell the truth about how it ended, even when the crawler could not write it
(killed, or stopped while the catalog was out of reach).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crawler.progress import parse_line as parse_progress
from crawler.run_state import EXIT_UNRECORDED, run_counts
from crawler.write_retry import unavailable, with_retries
from storage.errors import CatalogUnavailable
from storage.models import CrawlRun, CrawlStatus, utcnow
from storage.settings import ENV_BLOBS, ENV_DB_URL, ENV_HOME, Settings

log = logging.getLogger("dreamcrawl.crawler.crawl_process")

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


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_HOME] = str(settings.home)
    env[ENV_DB_URL] = settings.db_url
    env[ENV_BLOBS] = settings.blobs
    return env


def run_process(
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
    counts = None
    if labels is not None:
        try:
            counts = labels.finish(catalog)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("crawl run %s: labels not counted: %s", run_id, exc)
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
    """Make the run row tell the truth about how the crawler process ended.

    If the catalog is out of reach, the row keeps saying ``running`` (the next crawl
    marks it ``interrupted``; ``--resume`` finishes it) and the result says why.
    """
    try:
        return with_retries(
            lambda: _settle_row(catalog, run_id, returncode, stderr, stopped),
            seconds=0,  # the crawler process has retried already
            what=f"the end of crawl run {run_id}",
        )
    except CatalogUnavailable as exc:
        last = _last_line(stderr) if returncode == EXIT_UNRECORDED else None
        error = last or f"{exc}; the run stays 'running' until --resume {run_id}"
        return CrawlResult(run_id, CrawlStatus.INTERRUPTED, {}, error)


def _settle_row(
    catalog: Any, run_id: int, returncode: int, stderr: str, stopped: str | None
) -> CrawlResult:
    counts = run_counts(catalog, run_id)  # before the write transaction: SQLite has one
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        if run.status == CrawlStatus.RUNNING or stopped:
            if stopped or returncode < 0 or returncode == EXIT_UNRECORDED:
                run.status = CrawlStatus.INTERRUPTED
                run.error = stopped or (
                    f"crawler process killed by signal {-returncode}"
                    if returncode < 0
                    else _last_line(stderr) or f"crawler exited with {returncode}"
                )
            else:
                run.status = CrawlStatus.FAILED
                run.error = stderr.strip()[-STDERR_TAIL:] or f"crawler exited with {returncode}"
            run.finished_at = utcnow()
            run.counts = {**counts, "process": run.counts.get("process")}
        return CrawlResult(run_id, run.status, dict(run.counts), run.error)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""
