"""Database engines, sessions and automatic migrations.

SQLite is the default catalog; it is opened in WAL mode with a busy timeout and foreign
keys on, so that a crawler process and a flow can write to it at the same time.
PostgreSQL works through ``DREAMCRAWL_DB_URL`` (``postgresql+psycopg://…``).

The schema is owned by Alembic. :func:`open_catalog` upgrades an outdated database on
first use, under a lock (a file lock for SQLite, an advisory lock for PostgreSQL) so
that two processes starting together do not both migrate.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import BlobStore
from storage.blobstores import open_blob_store
from storage.errors import UserError
from storage.settings import Settings, get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "dreamcrawl_read_only"
# Any constant works; it only has to be the same in every dreamcrawl process.
PG_MIGRATION_LOCK = 0x6472_6561_6D63  # "dreamc"

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Prefer psycopg 3 for plain ``postgresql://`` URLs (psycopg2 is not a dependency)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """A new engine for ``url`` with dreamcrawl's connection settings."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UserError(f"DREAMCRAWL_DB_URL is not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, future=True
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, future=True)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"no driver for {parsed.get_backend_name()} ({exc.name} is not installed); "
            "install the extra: pip install 'dreamcrawl[postgres]'"
        ) from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue on the busy
    # timeout instead of failing with "database is locked" when a reader upgrades.
    # Read-only sessions (Catalog.read_session) begin deferred and never wait on writers.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (created once)."""
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and forked worker processes)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


@contextmanager
def _migration_lock(engine: Engine, settings_home: Path | None) -> Iterator[None]:
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = Path(database).with_suffix(".migrate.lock")
        with open(lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    elif backend == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({PG_MIGRATION_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})")
                conn.commit()
    else:
        yield


def ensure_schema(engine: Engine) -> bool:
    """Upgrade the database to the newest migration if needed; True if it migrated."""
    from storage import migrate

    key = engine.url.render_as_string(hide_password=False)
    if key in _migrated:
        return False
    with _migration_lock(engine, None):
        changed = False
        if not migrate.is_current(engine):
            migrate.upgrade(engine)
            changed = True
    _migrated.add(key)
    return changed


@dataclass
class Catalog:
    """An open catalog: its engine, a session factory and the blob store."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it does not queue behind writers."""
        reader = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        with Session(reader) as session:  # closing it rolls the read transaction back
            yield session


def open_catalog(settings: Settings | None = None, *, migrate: bool = True) -> Catalog:
    """Open (and, on first use, create or upgrade) the catalog of ``settings``."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    engine = get_engine(settings.db_url)
    if migrate:
        ensure_schema(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    return Catalog(
        settings=settings, engine=engine, sessions=sessions, blobs=open_blob_store(settings)
    )


def driver_message(exc: BaseException) -> str:
    """The first line of what the database driver said (SQLAlchemy wraps it in ``orig``
    and appends a background link on later lines)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else ""


def catalog_failure(exc: sa_exc.OperationalError | sa_exc.InterfaceError, url: str) -> str:
    """One line for a catalog that failed under a command: whether it could not be
    reached at all (no statement ran; nothing was started) or failed mid-command, the
    catalog's URL without its password, and the driver's first line."""
    where = make_url(url).render_as_string(hide_password=True)
    reason = driver_message(exc) or type(exc).__name__
    if exc.statement is None:
        return f"the catalog cannot be reached ({where}): {reason}; is its server up?"
    return f"the catalog failed ({where}): {reason}"


def preflight(settings: Settings | None = None) -> None:
    """Connect to the catalog once, so a command that would start flows, servers or
    crawler processes fails first, in one line, when the catalog's server is down. A
    SQLite catalog has no server, and is not created before the command checks its
    arguments."""
    engine = get_engine((settings or get_settings()).db_url)
    if engine.url.get_backend_name() != "sqlite":
        with engine.connect():
            pass
