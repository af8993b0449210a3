"""A private PostgreSQL cluster for the test suite, from Debian's ``postgresql`` package.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user
(created by the Debian package). Each test session gets its own cluster in a temporary
folder on a free port, stopped at the end. ``DREAMCRAWL_TEST_PG_URL`` points the suite
at an existing server instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _pg_bin(name: str) -> str:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(
        f"PostgreSQL's {name} was not found: install Debian's postgresql package "
        "(scripts/test-deps does it)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PgCluster:
    """A throw-away cluster in ``root`` that a test can stop and start again (to take
    the catalog away from a running crawl)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data, self.sock, self.log = root / "data", root / "sock", root / "server.log"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PgCluster:
        self.sock.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        initdb = [_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres(initdb), check=True, capture_output=True)
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log)]
        subprocess.run(_as_postgres([*command, "-w", "start"]), check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are cut off, as in a crash or restart)."""
        command = [_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
        subprocess.run(_as_postgres(command), capture_output=True)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away cluster; yield a SQLAlchemy URL for its ``postgres`` database."""
    existing = os.environ.get("DREAMCRAWL_TEST_PG_URL")
    if existing:
        yield existing
        return
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="dreamcrawl-pg-"))).init()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
