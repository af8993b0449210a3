"""`catalog sql --limit 0` streams its rows: memory stays flat however many rows come.

The real CLI runs in a child process under a real address-space limit (RLIMIT_AS), and
its peak resident memory is read from the kernel (``os.wait4``). A query of half a
million rows must finish, print every row, and peak no higher than a one-row query plus
a small margin. Before streaming, every row (and its dict) sat in memory first: the
child ran out of address space, or peaked hundreds of MiB higher.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db import Catalog

ROWS = 500_000
PAD = "x" * 60  # table cells show up to 80 characters
MANY = (
    f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS}) "
    f"SELECT x, '{PAD}' || x AS pad FROM c"
)
ADDRESS_SPACE = 768 * 2**20  # "SELECT 1" runs in under 400 MiB of it
MARGIN = 64 * 2**20  # what streaming may add to a one-row query's peak


def run_limited(argv: list[str], out: Path) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of the CLI run under ADDRESS_SPACE."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # its per-thread buffers
    with open(out, "w") as stdout:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *argv],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=limit,
        )
        assert child.stderr is not None
        err = child.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss * 1024, err


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_many_rows_stream_in_flat_memory(catalog: Catalog, tmp_path: Path, fmt: str) -> None:
    as_json = ["--json"] if fmt == "json" else []
    code, baseline, err = run_limited(
        ["catalog", "sql", "SELECT 1 AS x", *as_json], tmp_path / "one"
    )
    assert code == 0, err
    out = tmp_path / "many"
    code, peak, err = run_limited(
        ["catalog", "sql", MANY, "--limit", "0", "--timeout", "600", *as_json], out
    )
    assert code == 0, err[-2000:]
    if fmt == "json":
        rows = json.loads(out.read_text())
        assert len(rows) == ROWS
        assert rows[0] == {"x": 1, "pad": PAD + "1"}
        assert rows[-1] == {"x": ROWS, "pad": f"{PAD}{ROWS}"}
    else:
        lines = [line for line in out.read_text().splitlines() if line.startswith("│")]
        assert len(lines) == ROWS
        assert lines[0].split()[1:4:2] == ["1", PAD + "1"]
        assert lines[-1].split()[1:4:2] == [str(ROWS), f"{PAD}{ROWS}"]
        assert err.strip().splitlines()[-1] == f"{ROWS} rows"
    assert peak - baseline < MARGIN, (peak / 2**20, baseline / 2**20)
