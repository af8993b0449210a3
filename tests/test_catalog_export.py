"""`dreamcrawl catalog export`: CSV and Parquet, streamed, same rows as `list --json`."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipeline.cli import main
from storage.db import Catalog, open_catalog
from storage.queries import KINDS, Query, iter_rows
from storage.settings import Settings
from tests.catalog_data import build
from tests.helpers import dreamcrawl


def listed(capsys: pytest.CaptureFixture[str], *filters: str) -> list[dict]:
    capsys.readouterr()
    assert main(["catalog", "list", "--limit", "0", "--json", *filters]) == 0
    return json.loads(capsys.readouterr().out)


def test_csv_and_parquet_hold_what_list_shows(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    build(catalog)
    expected = listed(capsys, "--keyword", "cat")
    assert len(expected) == 2
    out_csv, out_pq = tmp_path / "out" / "cat.csv", tmp_path / "cat.parquet"
    for out in (out_csv, out_pq):
        assert main(["catalog", "export", str(out), "--keyword", "cat", "--batch-size", "1"]) == 0
        assert f"wrote 2 stylizations to {out}" in capsys.readouterr().err

    with open(out_csv, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["stylization_id"] for r in got] == [str(r["stylization_id"]) for r in expected]
    assert list(got[0]) == list(KINDS["stylizations"].view.column_names)
    for row, want in zip(got, expected, strict=True):
        for key, value in want.items():
            assert row[key] == ("" if value is None else str(value)), key

    table = pq.read_table(out_pq)
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("octaves").type == pa.int64()
    assert table.schema.field("total_seconds").type == pa.float64()
    records = table.to_pylist()
    assert [r["stylization_id"] for r in records] == [r["stylization_id"] for r in expected]
    for row, want in zip(records, expected, strict=True):
        assert row["created_at"].isoformat() == want["created_at"]
        assert row["layers"] == want["layers"] and row["total_seconds"] == want["total_seconds"]


def test_export_columns_kinds_and_empty_result(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    build(catalog)
    out = tmp_path / "runs.parquet"
    argv = ["catalog", "export", str(out), "--kind", "runs", "--columns", "crawl_run_id,keywords"]
    assert main(argv) == 0
    assert pq.read_table(out).to_pylist() == [
        {"crawl_run_id": 3, "keywords": "rocket"},
        {"crawl_run_id": 2, "keywords": "coffee,cat"},
        {"crawl_run_id": 1, "keywords": "cat,space"},
    ]
    empty = tmp_path / "none.parquet"
    assert main(["catalog", "export", str(empty), "--keyword", "no-such-keyword"]) == 0
    table = pq.read_table(empty)
    assert table.num_rows == 0 and "stylization_id" in table.schema.names


def test_rows_arrive_in_batches(catalog: Catalog) -> None:
    build(catalog)
    with catalog.engine.connect() as conn:
        batches = list(iter_rows(conn, Query(KINDS["images"]), batch_size=3))
    assert [len(b) for b in batches] == [3, 1]


def test_failed_export_leaves_no_file(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    build(catalog)
    out = tmp_path / "exports" / "bad.csv"
    assert main(["catalog", "export", str(out), "--columns", "nope"]) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err
    assert not out.parent.exists()
    # A successful export leaves its file and no temporary file beside it.
    out.parent.mkdir()
    assert main(["catalog", "export", str(out), "--sort", "octave_timings", "--batch-size",
                 "1", "--columns", "stylization_id"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.parent.iterdir()) == ["bad.csv"]


@pytest.mark.parametrize("where", ["folder", "read-only"])
def test_unwritable_destinations_are_one_line_exit_2(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    """A folder, or a path on a read-only filesystem (sysfs): one line, nothing left."""
    build(catalog)
    out = tmp_path if where == "folder" else Path("/sys/dreamcrawl-export.csv")
    capsys.readouterr()
    assert main(["catalog", "export", str(out), "--format", "csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write {out}" in err, err
    assert not list(tmp_path.glob(".*.part"))


def test_a_killed_exports_partial_file_is_removed_by_the_next_export(
    settings: Settings, tmp_path: Path
) -> None:
    """`kill -9` in the middle of writing leaves the hidden `.OUT.PID.part`; the next
    export to the same OUT removes it (its writer's lock is free) and leaves a live
    export's alone (its lock is held)."""
    catalog = open_catalog(settings)
    with catalog.session() as session:
        session.execute(sa.text(
            "INSERT INTO rejections (url, reason, created_at) "
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) "
            "SELECT 'http://example.com/' || x || '.jpg', 'too-small', "
            "'2026-01-01 00:00:00.000000' FROM c"
        ))  # fmt: skip
    out = tmp_path / "exports" / "rejections.csv"
    argv = ["catalog", "export", str(out), "--kind", "rejections", "--batch-size", "500"]
    child = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *argv])
    part = out.parent / f".{out.name}.{child.pid}.part"
    try:
        for _ in range(60_000):  # until it has written something (10 ms waits)
            if part.is_file() and part.stat().st_size > 0:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.01)
                pytest.fail(f"the export ended before it could be killed: {child.returncode}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert part.stat().st_size > 0 and not out.exists()

    live = out.parent / f".{out.name}.{os.getpid()}.part"  # as a running export holds it
    with open(live, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = dreamcrawl(*argv[:-2], "--batch-size", "50000")
    assert result.returncode == 0, result.stderr
    assert f"removed {part.name}" in result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, live.name])
    with open(out, newline="") as fh:
        assert sum(1 for _ in fh) == 200_001
