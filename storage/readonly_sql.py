"""``dreamcrawl catalog sql``: an analyst's query, and nothing but a read.

Three walls, so that one mistake is never enough to change the catalog:

1. the statement must start with a reading keyword (SELECT, WITH, VALUES, EXPLAIN, …)
   and be a single statement;
2. SQLite is opened through a separate ``file:…?mode=ro`` connection with
   ``PRAGMA query_only`` and an authorizer that allows reads only (no ATTACH, no
   writing PRAGMA); PostgreSQL runs it in a ``SET TRANSACTION READ ONLY`` transaction
   as one prepared statement (a prepared statement cannot hold two commands), then
   rolls back;
3. any database error becomes a one-line :class:`UserError` (exit 2).
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import Engine

from storage.errors import UserError

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


def run_query(
    engine: Engine, query: str, *, limit: int | None, timeout: float = DEFAULT_TIMEOUT_S
) -> tuple[list[str], list[tuple]]:
    """Run ``query`` read-only; return (column names, up to ``limit`` + 1 rows).

    The statement is stopped after ``timeout`` seconds (SQLite: a progress handler;
    PostgreSQL: ``statement_timeout``), so a runaway query cannot run for ever.
    """
    dialect = engine.url.get_backend_name()
    check_reading(query, dialect)
    if dialect == "sqlite":
        return _run_sqlite(engine, query, limit, timeout)
    if dialect == "postgresql":
        return _run_postgresql(engine, query, limit, timeout)
    raise UserError(f"catalog sql supports SQLite and PostgreSQL catalogs, not {dialect}")


def _fetch(cursor: Any, limit: int | None) -> list[tuple]:
    if limit is None:
        return [tuple(r) for r in cursor.fetchall()]
    return [tuple(r) for r in cursor.fetchmany(limit + 1)]


def _timed_out(timeout: float) -> UserError:
    return UserError(f"query stopped after {timeout:g} s (--timeout); nothing was changed")


def _run_sqlite(
    engine: Engine, query: str, limit: int | None, timeout: float
) -> tuple[list[str], list[tuple]]:
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
        except sqlite3.ProgrammingError as exc:
            if "one statement" in str(exc):
                raise UserError(
                    "catalog sql runs one statement at a time; nothing was run"
                ) from None
            raise UserError(f"bad query: {exc}") from None
        except sqlite3.DatabaseError as exc:
            if time.monotonic() > deadline and "interrupted" in str(exc):
                raise _timed_out(timeout) from None
            if refused:
                raise _refused(refused[0]) from None
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise _refused("a write") from None
            raise UserError(f"bad query: {exc}") from None
        columns = [d[0] for d in cursor.description or ()]
        try:
            return columns, _fetch(cursor, limit)
        except sqlite3.DatabaseError as exc:
            if time.monotonic() > deadline and "interrupted" in str(exc):
                raise _timed_out(timeout) from None
            raise UserError(f"query failed: {exc}") from None
    finally:
        conn.close()


def _run_postgresql(
    engine: Engine, query: str, limit: int | None, timeout: float
) -> tuple[list[str], list[tuple]]:
    import psycopg

    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert isinstance(pg, psycopg.Connection)
        pg.rollback()
        try:
            with pg.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
                milliseconds = max(1, round(timeout * 1000))
                cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
                # prepare=True sends it with the extended protocol, which refuses a
                # string holding several commands instead of running them all.
                cursor.execute(query.encode(), prepare=True)  # type: ignore[arg-type]
                columns = [d.name for d in cursor.description or ()]
                rows = _fetch(cursor, limit) if cursor.description else []
        except psycopg.errors.QueryCanceled:
            raise _timed_out(timeout) from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise _refused(_first_line(exc)) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise _refused(_first_line(exc)) from None
        except psycopg.Error as exc:
            message = _first_line(exc)
            if "multiple commands" in message:
                raise UserError(
                    "catalog sql runs one statement at a time; nothing was run"
                ) from None
            raise UserError(f"bad query: {message}") from None
        finally:
            pg.rollback()
        return columns, rows
    finally:
        raw.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
