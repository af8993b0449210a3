"""`dreamcrawl catalog sql`: reads work, every kind of write is refused and changes nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

from pipeline.cli import main
from storage.db import Catalog, dispose_engines
from tests.catalog_data import build

TABLES = ("crawl_runs", "images", "sightings", "rejections", "stylizations")

WRITES = [
    ("INSERT INTO crawl_runs (kind) VALUES ('x')", "INSERT is refused"),
    ("UPDATE images SET status = 'broken'", "UPDATE is refused"),
    ("DELETE FROM sightings", "DELETE is refused"),
    ("DROP TABLE stylizations", "DROP is refused"),
    ("DROP VIEW v_stylized", "DROP is refused"),
    ("CREATE TABLE t (x int)", "CREATE is refused"),
    ("ATTACH DATABASE 'other.db' AS other", "ATTACH is refused"),
    ("PRAGMA user_version = 7", "read-only: PRAGMA"),
    ("SELECT 1; DELETE FROM images", "one statement at a time"),
    ("select count(*) from images;\nDROP TABLE images", "one statement at a time"),
    ("WITH doomed AS (SELECT id FROM images) DELETE FROM images", "read-only"),
    ("/* sneaky */ -- comment\n  delete from images", "DELETE is refused"),
    ("", "needs a query"),
]


def counts(catalog: Catalog) -> dict[str, int]:
    with catalog.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def run_sql(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["catalog", "sql", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sql_reads_views_and_tables(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    build(catalog)
    code, out, _ = run_sql(
        capsys,
        "SELECT keyword, images FROM v_keyword_yield WHERE images > 0 ORDER BY images DESC, "
        "keyword",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == [
        {"keyword": "cat", "images": 1},
        {"keyword": "coffee", "images": 1},
        {"keyword": "space", "images": 1},
    ]
    code, out, err = run_sql(capsys, "SELECT id FROM images ORDER BY id", "--limit", "2")
    assert code == 0 and "more than --limit 2" in err
    assert [line.split()[1] for line in out.splitlines() if line.startswith("│")] == ["1", "2"]
    # A literal % in the query is not taken for a placeholder.
    code, out, _ = run_sql(
        capsys, "SELECT count(*) AS n FROM sightings WHERE url LIKE '%chelsea%'", "--json"
    )
    assert code == 0 and json.loads(out) == [{"n": 2}]


@pytest.mark.parametrize(("query", "message"), WRITES)
def test_writes_are_refused_and_change_nothing(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], query: str, message: str
) -> None:
    build(catalog)
    before = counts(catalog)
    sqlite_file = None
    if catalog.engine.dialect.name == "sqlite":
        sqlite_file = catalog.settings.home / "catalog.sqlite"
        dispose_engines()  # checkpoint the WAL so the file alone holds the catalog
        digest = hashlib.sha256(sqlite_file.read_bytes()).hexdigest()
    code, out, err = run_sql(capsys, query)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    if sqlite_file is not None:
        assert hashlib.sha256(sqlite_file.read_bytes()).hexdigest() == digest
        assert not (catalog.settings.home / "other.db").exists()
    assert counts(catalog) == before
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM v_stylized")).scalar_one() == 4


def test_sql_errors_are_one_line(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_sql(capsys, "SELECT * FROM no_such_table")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "bad query" in err and "no_such_table" in err


def test_a_runaway_query_is_stopped_by_the_statement_timeout(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recursive CTE that never ends: stopped after --timeout seconds, one line, exit 2
    (SQLite: a progress handler; PostgreSQL: statement_timeout)."""
    runaway = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    capsys.readouterr()
    assert main(["catalog", "sql", runaway, "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped after 1 s" in err[0] and "--timeout" in err[0], err
    assert main(["catalog", "sql", "SELECT count(*) AS n FROM images", "--json"]) == 0


def test_an_empty_result_still_names_its_columns(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows are streamed, and a stream learns its columns from its first row: a query
    that gives none still prints its header (PostgreSQL: the statement is described)."""
    code, out, err = run_sql(capsys, "SELECT id AS image_id, sha256 FROM images WHERE id < 0")
    assert code == 0 and err.strip() == "0 rows"
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert header.split() == ["┃", "image_id", "┃", "sha256", "┃"]
    code, out, _ = run_sql(capsys, "SELECT id FROM images WHERE id < 0", "--json")
    assert code == 0 and json.loads(out) == []
