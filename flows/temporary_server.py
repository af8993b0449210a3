"""The temporary Prefect server dies with the process that started it.

Without ``PREFECT_API_URL`` Prefect starts a temporary API server (uvicorn) in a child
process and stops it from an ``atexit`` hook. A process killed by a signal runs no
hook: the server (about 230 MB) then ran for ever and held the caller's stdout and
stderr open, so a wrapper waiting for them hung.

:func:`guard_temporary_server` makes Prefect start that server through this module
(``python -m flows.temporary_server PARENT_PID -m uvicorn …``, Prefect's own arguments
unchanged). Here a watcher thread waits on the parent with a pidfd (Linux 5.3+; else it
checks the parent PID once a second); when the parent is gone, however it died, the
server gets SIGTERM (uvicorn's graceful shutdown) and exits within
:data:`GRACE_S` at the latest. The server's stdin is /dev/null.
"""

from __future__ import annotations

import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any

GRACE_S = 5.0
MODULE = "flows.temporary_server"


def guard_temporary_server() -> None:
    """Make Prefect's temporary servers of this process die with it (idempotent)."""
    from prefect.server.api import server

    if isinstance(server.subprocess, _GuardedSubprocess):
        return
    server.subprocess = _GuardedSubprocess()


class _GuardedSubprocess:
    """``subprocess`` as Prefect's server module sees it: ``Popen`` of the temporary
    server goes through this module; everything else is the real ``subprocess``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        if list(args[1:3]) == ["-m", "uvicorn"]:
            args = [args[0], "-m", MODULE, str(os.getpid()), *args[1:]]
            kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(args, **kwargs)


def _wait_for_exit(pid: int) -> None:
    """Return once process ``pid`` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd: poll the parent link instead
        while os.getppid() == pid:
            time.sleep(1.0)
        return
    try:
        if os.getppid() != pid:  # exited (and maybe reused) before we opened it
            return
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll():
            pass
    finally:
        os.close(fd)


def _watch(parent: int) -> None:
    _wait_for_exit(parent)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down gracefully
    time.sleep(GRACE_S)
    os._exit(1)  # it did not: leave anyway


def main() -> None:
    """``python -m flows.temporary_server PARENT_PID -m uvicorn ARGS…``"""
    parent = int(sys.argv[1])
    if sys.argv[2:4] != ["-m", "uvicorn"]:
        raise SystemExit(f"usage: python -m {MODULE} PARENT_PID -m uvicorn ARGS…")
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()
    sys.argv = ["uvicorn", *sys.argv[4:]]
    runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
