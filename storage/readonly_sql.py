"""``dreamcrawl catalog sql``: an analyst's query, and nothing but a read.

Three walls, so that one mistake is never enough to change the catalog:

1. the statement must start with a reading keyword (SELECT, WITH, VALUES, EXPLAIN, …)
   and be a single statement;
2. SQLite is opened through a separate ``file:…?mode=ro`` connection with
   ``PRAGMA query_only`` and an authorizer that allows reads only (no ATTACH, no
   writing PRAGMA); PostgreSQL runs it in a ``SET TRANSACTION READ ONLY`` transaction
   through the extended protocol (which cannot hold two commands), then rolls back;
   with ``DREAMCRAWL_SQL_URL`` it also runs as a role that may only read
   (docs/catalog.md, "A read-only PostgreSQL role");
3. any database error becomes a one-line :class:`UserError` (exit 2).

Rows are streamed (:func:`stream_query`), never collected, and a statement timeout
bounds the time, so neither a huge result nor a runaway query can take the machine.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sqlite3
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import Engine

from storage.errors import UserError
from storage.settings import ENV_SQL_URL, Settings

READING = ("SELECT", "WITH", "VALUES", "EXPLAIN", "TABLE")
READING_BY_DIALECT = {"sqlite": ("PRAGMA",), "postgresql": ("SHOW",)}
# PRAGMAs that only describe the schema; every other PRAGMA is refused.
INTROSPECTION_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "database_list",
        "collation_list",
        "function_list",
        "pragma_list",
        "compile_options",
    }
)
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)
_ACTION_NAMES = {
    getattr(sqlite3, name): name.removeprefix("SQLITE_").replace("_", " ")
    for name in (
        "SQLITE_INSERT",
        "SQLITE_UPDATE",
        "SQLITE_DELETE",
        "SQLITE_ATTACH",
        "SQLITE_DETACH",
        "SQLITE_PRAGMA",
        "SQLITE_TRANSACTION",
        "SQLITE_SAVEPOINT",
        "SQLITE_ALTER_TABLE",
        "SQLITE_REINDEX",
        "SQLITE_ANALYZE",
        "SQLITE_CREATE_TABLE",
        "SQLITE_CREATE_INDEX",
        "SQLITE_CREATE_VIEW",
        "SQLITE_CREATE_TRIGGER",
        "SQLITE_CREATE_TEMP_TABLE",
        "SQLITE_CREATE_TEMP_VIEW",
        "SQLITE_CREATE_TEMP_INDEX",
        "SQLITE_CREATE_TEMP_TRIGGER",
        "SQLITE_CREATE_VTABLE",
        "SQLITE_DROP_TABLE",
        "SQLITE_DROP_INDEX",
        "SQLITE_DROP_VIEW",
        "SQLITE_DROP_TRIGGER",
        "SQLITE_DROP_TEMP_TABLE",
        "SQLITE_DROP_TEMP_VIEW",
        "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_TRIGGER",
        "SQLITE_DROP_VTABLE",
    )
    if hasattr(sqlite3, name)
}
_COMMENTS = re.compile(r"(--[^\n]*\n?|/\*.*?\*/|\s+)", re.S)


def first_keyword(query: str) -> str:
    """The statement's first word, after comments and blanks, upper-cased."""
    text = query
    while True:
        match = _COMMENTS.match(text)
        if not match or not match.group(0):
            break
        text = text[match.end() :]
    word = re.match(r"[A-Za-z_]+", text)
    return word.group(0).upper() if word else ""


def _refused(what: str) -> UserError:
    return UserError(
        f"catalog sql is read-only: {what} is refused; run one SELECT, WITH, VALUES or "
        "EXPLAIN statement"
    )


def check_reading(query: str, dialect: str | None = None) -> None:
    """Refuse an empty query or one that does not start like a read (in ``dialect``)."""
    word = first_keyword(query)
    if not word:
        raise UserError('catalog sql needs a query, e.g. "SELECT count(*) FROM v_images"')
    extra = (
        READING_BY_DIALECT.get(dialect, ())
        if dialect
        else tuple(w for words in READING_BY_DIALECT.values() for w in words)
    )
    if word not in READING + extra:
        raise _refused(word)


DEFAULT_TIMEOUT_S = 60.0


def sql_engine(settings: Settings) -> Engine:
    """What ``catalog sql`` connects with: ``DREAMCRAWL_SQL_URL`` when set (an analysts'
    role that may only read, so the database itself refuses writes and file access; the
    catalog is not migrated through it), else the catalog's own engine."""
    from storage.db import make_engine, open_catalog

    if settings.sql_url:
        return make_engine(settings.sql_url)
    return open_catalog(settings).engine


# Rows fetched from the database at a time: what one streamed query holds in memory.
FETCH_ROWS = 1000


@dataclass
class Rows:
    """A running query: its column names, and its rows as they are fetched."""

    columns: list[str]
    rows: Generator[tuple, None, None]
    close: Callable[[], None]


@contextmanager
def stream_query(
    engine: Engine, query: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Iterator[Rows]:
    """Run ``query`` read-only; its rows arrive :data:`FETCH_ROWS` at a time.

    Nothing is collected: SQLite's cursor is read with ``fetchmany``, PostgreSQL's rows
    come in chunks of a streamed statement (libpq's chunked or single-row mode), so memory
    stays flat however many rows the query gives. The statement is stopped after
    ``timeout`` seconds, counted until its last row is read (SQLite: a progress handler;
    PostgreSQL: ``statement_timeout``). Leaving the block early stops the query.
    """
    dialect = engine.url.get_backend_name()
    check_reading(query, dialect)
    if dialect == "sqlite":
        opened = _open_sqlite(engine, query, timeout)
    elif dialect == "postgresql":
        opened = _open_postgresql(engine, query, timeout)
    else:
        raise UserError(f"catalog sql supports SQLite and PostgreSQL catalogs, not {dialect}")
    try:
        yield opened
    finally:
        opened.rows.close()
        opened.close()


def run_query(
    engine: Engine, query: str, *, limit: int | None, timeout: float = DEFAULT_TIMEOUT_S
) -> tuple[list[str], list[tuple]]:
    """(column names, up to ``limit`` + 1 rows) of ``query``, for callers that want a list."""
    with stream_query(engine, query, timeout=timeout) as result:
        rows = itertools.islice(result.rows, None if limit is None else limit + 1)
        return result.columns, list(rows)


def _timed_out(timeout: float) -> UserError:
    return UserError(f"query stopped after {timeout:g} s (--timeout); nothing was changed")


def _sqlite_error(
    exc: sqlite3.Error, refused: list[str], timed_out: bool, timeout: float
) -> UserError:
    if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in str(exc):
        return UserError("catalog sql runs one statement at a time; nothing was run")
    if timed_out and "interrupted" in str(exc):
        return _timed_out(timeout)
    if refused:
        return _refused(refused[0])
    if "readonly" in str(exc) or "read-only" in str(exc):
        return _refused("a write")
    return UserError(f"bad query: {exc}")


def _open_sqlite(engine: Engine, query: str, timeout: float) -> Rows:
    database = engine.url.database
    if not database or database == ":memory:" or not Path(database).is_file():
        raise UserError(f"no SQLite catalog file at {database!r}")
    uri = f"file:{quote(str(Path(database).absolute()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    refused: list[str] = []

    def authorize(action: int, arg1: Any, arg2: Any, _db: Any, _trigger: Any) -> int:
        if action in _ALLOWED_ACTIONS or action == _RECURSIVE:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and str(arg1).lower() in INTROSPECTION_PRAGMAS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_schema"):
            # SQLite reports its own schema parsing this way; the connection is
            # read-only and query_only, so no real write to the schema can happen.
            return sqlite3.SQLITE_OK
        name = _ACTION_NAMES.get(action, f"action {action}")
        refused.append(f"{name} {arg1}" if action == sqlite3.SQLITE_PRAGMA else name)
        return sqlite3.SQLITE_DENY

    deadline = time.monotonic() + timeout
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(authorize)
        # Called every 10,000 virtual-machine steps; non-zero interrupts the statement.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = conn.execute(query)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, refused, time.monotonic() > deadline, timeout) from None
    except BaseException:
        conn.close()
        raise

    def rows() -> Generator[tuple, None, None]:
        while True:
            try:
                batch = cursor.fetchmany(FETCH_ROWS)
            except sqlite3.Error as exc:
                if time.monotonic() > deadline and "interrupted" in str(exc):
                    raise _timed_out(timeout) from None
                raise UserError(f"query failed: {exc}") from None
            if not batch:
                return
            yield from batch

    columns = [d[0] for d in cursor.description or ()]
    return Rows(columns, rows(), conn.close)


@contextmanager
def _pg_errors(timeout: float) -> Iterator[None]:
    """psycopg's errors as one-line :class:`UserError` s."""
    import psycopg

    try:
        yield
    except psycopg.errors.QueryCanceled:
        raise _timed_out(timeout) from None
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
        raise _refused(_first_line(exc)) from None
    except psycopg.Error as exc:
        message = _first_line(exc)
        if "multiple commands" in message:
            raise UserError("catalog sql runs one statement at a time; nothing was run") from None
        raise UserError(f"bad query: {message}") from None


def _open_postgresql(engine: Engine, query: str, timeout: float) -> Rows:
    import psycopg
    from psycopg import capabilities

    try:
        raw = engine.raw_connection()
    except Exception as exc:  # a wrong password, a role or server that is not there
        who = f" as {engine.url.username}" if engine.url.username else ""
        raise UserError(
            f"cannot connect to the catalog{who} (DREAMCRAWL_DB_URL, or {ENV_SQL_URL} "
            f"for catalog sql): {_first_line(exc)}"
        ) from None
    pg = raw.driver_connection
    assert isinstance(pg, psycopg.Connection)
    cursor = pg.cursor()
    # Chunks of FETCH_ROWS need libpq 17; older ones stream one row at a time.
    chunk = FETCH_ROWS if capabilities.has_stream_chunked() else 1
    # stream() sends the statement with the extended protocol, which refuses a string
    # holding several commands instead of running them all.
    stream = cursor.stream(query.encode(), size=chunk)  # type: ignore[arg-type]

    def close() -> None:
        stream.close()  # stops a query still sending rows
        with contextlib.suppress(psycopg.Error):
            pg.rollback()
        cursor.close()
        raw.close()

    try:
        with _pg_errors(timeout):
            pg.rollback()
            cursor.execute("SET TRANSACTION READ ONLY")
            milliseconds = max(1, round(timeout * 1000))
            cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
            first = list(itertools.islice(stream, 1))  # runs it: errors show up here
        description = cursor.description
        columns = [d.name for d in description] if description else _pg_columns(pg, query)
    except BaseException:
        close()
        raise

    def rows() -> Generator[tuple, None, None]:
        with _pg_errors(timeout):
            yield from first
            yield from stream

    return Rows(columns, rows(), close)


def _pg_columns(pg: Any, query: str) -> list[str]:
    """The column names of a query that gave no rows (a stream learns them from its
    first row): the statement is prepared and described, not run again."""
    from psycopg import pq

    name = b"dreamcrawl_describe"
    if pg.pgconn.prepare(name, query.encode()).status != pq.ExecStatus.COMMAND_OK:
        return []
    described = pg.pgconn.describe_prepared(name)
    pg.pgconn.exec_(b"DEALLOCATE dreamcrawl_describe")
    return [(described.fname(i) or b"").decode() for i in range(described.nfields)]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
