"""``dreamcrawl catalog export``: a listing to CSV or Parquet, streamed.

Rows come from the database in batches (a server-side cursor on PostgreSQL, SQLite's
own lazy cursor) and go out a batch at a time, so memory stays flat however big the
catalog is. The file is written under a temporary name and renamed at the end: a failed
or interrupted export never leaves a half-written file under the name asked for.

The temporary file is ``.OUT.PID.part`` beside OUT, locked (``flock``) by its writer for
as long as it writes. An export killed with ``kill -9`` cannot remove it, and ``catalog
check`` cannot know where exports go, so each export first removes the leftovers of
earlier exports to the same OUT: the ``.part`` files whose lock is free and whose
process is gone (:func:`remove_stale_parts`). A running export's file is left alone.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import glob
import logging
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.errors import UserError
from storage.queries import Query, as_utc, iter_rows

log = logging.getLogger("dreamcrawl.storage.export")


def arrow_type(type_: sa.types.TypeEngine) -> pa.DataType:
    """The Parquet column type of a view column."""
    if isinstance(type_, sa.DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(type_, sa.Boolean):
        return pa.bool_()
    if isinstance(type_, sa.Integer):
        return pa.int64()
    if isinstance(type_, sa.Float):
        return pa.float64()
    return pa.string()


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def _batches(engine: Engine, query: Query, batch_size: int) -> Iterator[list[Any]]:
    with engine.connect() as conn:
        yield from iter_rows(conn, query, batch_size=batch_size)


def _write_csv(path: Path, names: Sequence[str], batches: Iterator[list[Any]]) -> int:
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for batch in batches:
            writer.writerows([_csv_value(v) for v in row] for row in batch)
            count += len(batch)
    return count


def _write_parquet(path: Path, schema: pa.Schema, batches: Iterator[list[Any]]) -> int:
    count = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            columns = list(zip(*batch, strict=True)) if batch else [[] for _ in schema]
            arrays = []
            for values, field in zip(columns, schema, strict=True):
                if pa.types.is_timestamp(field.type):
                    values = [None if v is None else as_utc(v) for v in values]
                arrays.append(pa.array(values, type=field.type))
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            count += len(batch)
    return count


def remove_stale_parts(out: Path) -> list[Path]:
    """Remove what killed exports to ``out`` left (``.OUT.PID.part``); return those paths.

    A file counts as stale when no process holds its lock and its PID is not running:
    the lock says no writer is alive (it dies with its process), the PID covers the
    instant between a writer creating its file and locking it.
    """
    removed = []
    for path in sorted(out.parent.glob(f".{glob.escape(out.name)}.*.part")):
        pid = path.name.removeprefix(f".{out.name}.").removesuffix(".part")
        if not pid.isdigit() or _running(int(pid)):
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
            removed.append(path)
        except OSError:
            continue  # locked: a live export writes it
        finally:
            os.close(fd)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def export(engine: Engine, query: Query, out: Path, *, fmt: str, batch_size: int = 10_000) -> int:
    """Write the rows of ``query`` to ``out`` as ``fmt`` (csv|parquet); return the count."""
    view = query.kind.view
    names = query.columns or view.column_names
    out = Path(out)
    if out.is_dir():
        raise UserError(f"cannot write {out}: it is a folder; name a file, e.g. {out / 'x.csv'}")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    batches = _batches(engine, query, batch_size)
    lock = -1
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for path in remove_stale_parts(out):
            log.warning("removed %s, left by an export that was killed", path.name)
        lock = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the file is renamed or removed
        if fmt == "csv":
            count = _write_csv(tmp, names, batches)
        else:
            schema = pa.schema([(n, arrow_type(view.column(n).type)) for n in names])
            count = _write_parquet(tmp, schema, batches)
        os.replace(tmp, out)
    except OSError as exc:  # read-only filesystem, no permission, disk full…
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        batches.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if lock >= 0:
            os.close(lock)
    return count
