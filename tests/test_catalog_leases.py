"""`catalog list` says which dreams are held, by which worker and until when.

A real worker process takes the lease with the claim the flows use (storage.jobs.claim)
and exits; the listing (table, JSON and CSV export) names that process and its lease's
end. Rows nobody holds show neither.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.cli import main
from storage.db import Catalog
from storage.models import Stylization
from storage.queries import as_utc
from tests.catalog_data import build

WORKER = textwrap.dedent(
    """
    import os, sys
    from datetime import timedelta
    from storage import jobs
    from storage.db import open_catalog
    from storage.settings import Settings

    catalog = open_catalog(Settings.from_env())
    with catalog.session() as session:
        assert jobs.claim(session, int(sys.argv[1]), lease=timedelta(hours=1))
    print(os.getpid())
    """
)


def test_list_names_the_holder_of_a_running_dream(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    built = build(catalog)
    sid = built.stylizations["coffee_fast"]
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, str(sid)], capture_output=True, text=True, check=True
    )
    holder = f"{socket.gethostname()}:{int(worker.stdout)}"
    with catalog.read_session() as session:
        expires = as_utc(session.scalar(sa.select(Stylization.lease_expires_at).where(
            Stylization.id == sid)))  # fmt: skip
    assert expires is not None

    capsys.readouterr()
    assert main(["catalog", "list", "--json"]) == 0
    rows = {r["stylization_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[sid]["status"] == "running"
    assert rows[sid]["held_by"] == holder
    held_until = as_utc(datetime.fromisoformat(rows[sid]["held_until"]))
    assert abs(held_until - expires) < timedelta(seconds=1)
    # Rows nobody holds (done, failed) name nobody.
    others = [r for i, r in rows.items() if i != sid]
    assert others and all(r["held_by"] is None and r["held_until"] is None for r in others)

    assert main(["catalog", "list", "--status", "running"]) == 0
    table = capsys.readouterr().out
    assert "held_by" in table and "held_until" in table
    line = next(line for line in table.splitlines() if f" {sid} " in line)
    assert holder in line and expires.strftime("%Y-%m-%d %H:%M:%S") in line

    image_id = built.images["coffee"]
    assert main(["catalog", "show", str(image_id)]) == 0
    shown = capsys.readouterr().out
    assert "held_by" in shown and holder in shown

    out = tmp_path / "held.csv"
    assert main(["catalog", "export", str(out), "--status", "running"]) == 0
    with open(out, newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert [(r["stylization_id"], r["held_by"]) for r in exported] == [(str(sid), holder)]
    assert as_utc(datetime.fromisoformat(exported[0]["held_until"])) == held_until
