"""One process tree per crawl run: an flock on the run's folder.

The command (``dreamcrawl crawl``, the flows) takes the lock when it creates or resumes
a run and hands the locked descriptor to its crawler process, so the lock lasts as
long as either of them lives, whichever is killed first. A ``--resume`` of a run whose
lock is held is refused with one line: its start-up cleanup would otherwise delete a
live writer's blobs that are not committed yet.
"""

from __future__ import annotations

import fcntl
import os

from sqlalchemy import select

from storage.db import Catalog
from storage.errors import UserError
from storage.models import CrawlRun, CrawlStatus, utcnow
from storage.settings import Settings

LOCK_FILE = "lock"


def lock_run(settings: Settings, run_id: int) -> int:
    """The descriptor holding run ``run_id``'s lock; :class:`UserError` if it is held."""
    folder = settings.runs_dir / str(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"crawl run {run_id} is still running in another process; wait for it to end "
            f"(or stop it), then --resume {run_id}"
        ) from None
    return fd


def sweep_dead_runs(catalog: Catalog) -> list[int]:
    """Mark runs that a killed process left ``running`` as ``interrupted``.

    A run is dead when it says ``running`` and nobody holds its lock (its command and
    its crawler process are gone: only SIGKILL or a crash ends them without a word).
    What its writer left (temporary files, blobs whose rows never committed) is removed,
    and the run says so; a crawl run can then be resumed. Returns the runs marked.
    """
    from crawler.run_state import recover_run

    with catalog.read_session() as session:
        running = list(
            session.scalars(select(CrawlRun.id).where(CrawlRun.status == CrawlStatus.RUNNING))
        )
    marked = []
    for run_id in running:
        try:
            lock = lock_run(catalog.settings, run_id)
        except UserError:
            continue  # alive
        try:
            recover_run(catalog, run_id)
            with catalog.session() as session:
                run = session.get(CrawlRun, run_id)
                if run is not None and run.status == CrawlStatus.RUNNING:
                    run.status = CrawlStatus.INTERRUPTED
                    run.error = "its process was killed (no process held the run any more)"
                    run.finished_at = utcnow()
                    marked.append(run_id)
        finally:
            os.close(lock)
    return marked
