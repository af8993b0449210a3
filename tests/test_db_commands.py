"""Schema commands: `dreamcrawl db history|downgrade|upgrade`, and `alembic` from the repo.

Both run in subprocesses on the catalog named by DREAMCRAWL_DB_URL, on SQLite and on a
real PostgreSQL server (the ``db_url`` fixture), and the schema is read back with
SQLAlchemy's inspector after each step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from storage import migrate
from storage.db import dispose_engines, make_engine
from tests.conftest import REPO
from tests.helpers import dreamcrawl

HISTORY = migrate.history()  # newest first
HEAD = HISTORY[0].revision
BELOW_HEAD = HISTORY[1].revision  # where one step down leads
FIRST = HISTORY[-1].revision


def schema(url: str) -> tuple[str | None, set[str], set[str]]:
    """(revision, tables, views) of the database, read fresh."""
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        views = set(inspector.get_view_names())
        return migrate.current_revision(engine), tables, views
    finally:
        engine.dispose()
        dispose_engines()


def columns(url: str) -> set[tuple[str, str]]:
    """(table or view, column) of every table and view in the database."""
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        names = inspector.get_table_names() + inspector.get_view_names()
        return {(name, c["name"]) for name in names for c in inspector.get_columns(name)}
    finally:
        engine.dispose()
        dispose_engines()


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_db_history_downgrade_and_upgrade_again(db_url: str) -> None:
    assert dreamcrawl("db", "upgrade").returncode == 0
    revision, tables, views = schema(db_url)
    assert revision == HEAD and "images" in tables and "v_stylized" in views
    head_columns = columns(db_url)

    history = dreamcrawl("db", "history")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[0].startswith(f"{BELOW_HEAD} -> {HEAD}  ")
    assert lines[0].endswith("(head, current)")
    assert lines[-1].startswith(f"base -> {FIRST}  initial catalog")

    down = dreamcrawl("db", "downgrade")
    assert down.returncode == 0, down.stderr
    assert f"catalog downgraded {HEAD} -> {BELOW_HEAD}" in down.stdout
    revision, tables, _ = schema(db_url)
    assert revision == BELOW_HEAD and "images" in tables
    # The step down undid something: a view, or a column.
    assert columns(db_url) < head_columns
    # Step by step down to the first migration (no views yet).
    while revision != FIRST:
        assert dreamcrawl("db", "downgrade").returncode == 0
        revision, tables, views = schema(db_url)
    assert "images" in tables and "v_stylized" not in views
    assert dreamcrawl("db", "history").stdout.splitlines()[-1].endswith("(current)")

    # Going below the first migration drops the data: only with --yes.
    one_line_error(dreamcrawl("db", "downgrade"), "drops every catalog table")
    one_line_error(dreamcrawl("db", "downgrade", "0999"), "unknown revision '0999'")
    one_line_error(dreamcrawl("db", "downgrade", "-5"), "only base lies below")
    assert schema(db_url)[0] == FIRST
    assert dreamcrawl("db", "downgrade", "base", "--yes").returncode == 0
    revision, tables, views = schema(db_url)
    assert (revision, tables, views) == (None, set(), set())
    one_line_error(dreamcrawl("db", "downgrade"), "nothing to downgrade")

    assert dreamcrawl("db", "upgrade").returncode == 0
    assert schema(db_url)[0] == HEAD


def alembic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), *args],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alembic_command_from_the_repository(db_url: str) -> None:
    up = alembic("upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert f"Running upgrade {BELOW_HEAD} -> {HEAD}" in up.stderr
    assert schema(db_url)[0] == HEAD

    history = alembic("history")
    assert history.returncode == 0, history.stderr
    assert f"{BELOW_HEAD} -> {HEAD} (head)" in history.stdout
    assert f"<base> -> {FIRST}, initial catalog" in history.stdout

    before = columns(db_url)
    down = alembic("downgrade", "-1")
    assert down.returncode == 0, down.stderr
    revision = schema(db_url)[0]
    assert revision == BELOW_HEAD and columns(db_url) < before
    current = alembic("current")
    assert current.stdout.split() == [BELOW_HEAD]
