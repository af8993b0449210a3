"""The catalog's PostgreSQL server is down when a command starts: one line naming the
catalog (without its password) and exit 2, no traceback, for every command that needs
it, flows included (docs/crawler.md and docs/engine.md, "When something fails")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg_server import _free_port

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))
COMMANDS = {
    "catalog list": ["catalog", "list"],
    "db current": ["db", "current"],
    "crawl": ["crawl", "-k", "cat", "--start-url", "http://example.org/"],
    "import": ["import", ".", "-k", "cat"],
    "stylize (a flow)": ["stylize", "--limit", "1"],
}


@pytest.mark.parametrize("argv", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_dead_catalog_server_is_one_line_exit_2(settings, argv: list[str]) -> None:
    dead = f"postgresql+psycopg://dreamcrawl:s3cret@127.0.0.1:{_free_port()}/catalog"
    env = {**os.environ, "DREAMCRAWL_DB_URL": dead}
    done = subprocess.run([DREAMCRAWL, *argv], capture_output=True, text=True, env=env, timeout=300)
    ours = [line for line in done.stderr.splitlines() if line.startswith("dreamcrawl")]
    assert done.returncode == 2, done.stderr
    assert len(ours) == 1 and "the catalog cannot be reached" in ours[0], done.stderr
    assert "127.0.0.1" in ours[0] and "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr
