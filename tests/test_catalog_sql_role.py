"""`catalog sql` as the read-only analysts' role that docs/catalog.md tells how to make.

The role is created on the suite's real PostgreSQL with the documented SQL block, word
for word (only the names are the test's), and the real CLI runs with
``DREAMCRAWL_SQL_URL`` naming it, while ``DREAMCRAWL_DB_URL`` still names the
superuser: reads work, including a table the owner creates later (default privileges);
``pg_read_file`` and writes are refused by the database, with one line and exit 2.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import dispose_engines, make_engine, open_catalog
from storage.settings import Settings
from tests.catalog_data import build
from tests.helpers import dreamcrawl
from tests.pg_server import create_database

DOC = (Path(__file__).resolve().parents[1] / "docs" / "catalog.md").read_text()


def role_sql(database: str, owner: str, role: str, password: str) -> list[str]:
    """The documented statements, with this test's names."""
    (block,) = re.findall(r"```postgresql\n(.*?)```", DOC, re.S)
    for word, value in (("catalog", database), ("catalog_owner", owner), ("analyst", role)):
        block = re.sub(rf"\b{word}\b", value, block)
    block = block.replace("'change-me'", f"'{password}'")
    return [s.strip() for s in block.split(";") if s.strip()]


def one_line_exit_2(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines
    assert result.stdout == ""


def test_sql_as_the_documented_read_only_role(
    settings: Settings, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = create_database(pg_admin_url, "t_sql_role")
    monkeypatch.setenv("DREAMCRAWL_DB_URL", url)
    build(open_catalog(Settings.from_env()))
    dispose_engines()
    owner = make_engine(url)
    role, password = f"analyst_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    database = sa.make_url(url).database
    try:
        with owner.begin() as conn:
            assert conn.execute(sa.text("SELECT current_setting('is_superuser')")).scalar() == "on"
            me = conn.execute(sa.text("SELECT current_user")).scalar()
            for statement in role_sql(database, me, role, password):
                conn.execute(sa.text(statement))
        as_role = sa.make_url(url).set(username=role, password=password)
        env = {"DREAMCRAWL_SQL_URL": as_role.render_as_string(hide_password=False)}

        def sql(query: str, *flags: str) -> subprocess.CompletedProcess[str]:
            return dreamcrawl("catalog", "sql", query, *flags, env=env)

        read = sql("SELECT count(*) AS n FROM v_stylized", "--json")
        assert read.returncode == 0, read.stderr
        assert json.loads(read.stdout) == [{"n": 4}]
        assert json.loads(sql("SELECT current_user AS u", "--json").stdout) == [{"u": role}]

        one_line_exit_2(
            sql("SELECT pg_read_file('/etc/passwd')"),
            "permission denied for function pg_read_file",
        )
        one_line_exit_2(sql("SELECT pg_ls_dir('/')"), "permission denied")
        one_line_exit_2(sql("DELETE FROM images"), "DELETE is refused")
        # A write that gets past the first wall (it starts like a read) meets the role's.
        one_line_exit_2(
            sql("WITH d AS (DELETE FROM images RETURNING id) SELECT * FROM d"), "read-only"
        )

        # A table the owner's next migration creates is readable too (default privileges).
        with owner.begin() as conn:
            conn.execute(sa.text("CREATE TABLE later_table (x int)"))
            conn.execute(sa.text("INSERT INTO later_table VALUES (7)"))
        later = sql("SELECT x FROM later_table", "--json")
        assert later.returncode == 0 and json.loads(later.stdout) == [{"x": 7}], later.stderr
        with owner.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM images")).scalar() == 4
    finally:
        owner.dispose()
