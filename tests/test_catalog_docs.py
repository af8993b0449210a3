"""The SQL and `catalog list` examples of docs/catalog.md run, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pipeline.cli import main
from storage.db import Catalog
from storage.readonly_sql import run_query
from tests.catalog_data import build

DOC = (Path(__file__).resolve().parents[1] / "docs" / "catalog.md").read_text()


def sql_examples() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC, re.S)
    inline = re.findall(r'dreamcrawl catalog sql "(.*?)"', DOC, re.S)
    return [q.strip().rstrip(";") for q in blocks + inline if q.strip() not in ("QUERY", "…")]


def list_examples() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", DOC, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("dreamcrawl catalog list"):
                commands.append(shlex.split(line)[1:])
    return commands


def test_docs_have_examples() -> None:
    assert len(sql_examples()) >= 10 and len(list_examples()) >= 5


def test_sql_examples_run(catalog: Catalog) -> None:
    build(catalog)
    for query in sql_examples():
        columns, _rows = run_query(catalog.engine, query, limit=100)
        assert columns, query


def test_list_examples_run(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    build(catalog)
    for argv in list_examples():
        assert main(argv) == 0, argv
    assert "paper-single-channel" in capsys.readouterr().out  # the failed mixed4 dream
