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

from storage.errors import UserError
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
