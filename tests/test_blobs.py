"""The local blob store: layout, atomic writes, no overwrites, kills (what both backends
promise is tested in tests/test_blob_backends.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.blobs import LocalBlobStore
from storage.db import open_catalog
from storage.integrity import check, repair
from storage.models import Image
from storage.settings import Settings
from tests.conftest import REPO


def test_layout_and_round_trip(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    data = b"dreamcrawl" * 1000
    key = store.put_bytes(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.path(key) == tmp_path / "objects" / key[:2] / key[2:]
    assert store.read_bytes(key) == data
    assert store.hash_of(key) == key
    assert list(store.iter_keys()) == [key]
    assert store.temp_files() == []


def test_same_content_is_stored_once_and_never_overwritten(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key = store.put_bytes(b"first")
    before = store.path(key).stat()
    assert store.put_chunks([b"fir", b"st"]) == key
    after = store.path(key).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(list(store.iter_keys())) == 1


def test_put_file_and_stream(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 17))
    store = LocalBlobStore(tmp_path / "objects")
    key = store.put_file(source)
    assert store.read_bytes(key) == source.read_bytes()


def test_rejects_malformed_keys(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for bad in ("../../etc/passwd", "ABC", "g" * 64, ""):
        with pytest.raises(ValueError, match="not a blob key"):
            store.path(bad)


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from storage.settings import Settings
    from storage.db import open_catalog
    from storage.records import ImageFacts, upsert_image

    catalog = open_catalog(Settings.from_env())

    def chunks():
        yield b"x" * 65536
        print("writing", flush=True)
        sys.stdin.readline()  # blocks until the test kills us
        yield b"y" * 65536

    key = catalog.blobs.put_chunks(chunks())
    with catalog.session() as session:
        upsert_image(session, ImageFacts(sha256=key, width=1, height=1, format="PNG", bytes=1))
    """
)


def test_killed_writer_leaves_no_object_and_no_row(settings: Settings) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    catalog = open_catalog(settings)
    assert list(catalog.blobs.iter_keys()) == []
    with catalog.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Image)) == 0
    # What it did leave is an unfinished temporary file, which check finds and repair removes.
    problems = check(catalog)
    assert [p.kind for p in problems] == ["stale-temp"]
    assert len(catalog.blobs.temp_files()) == 1
    repair(catalog, problems, min_age=0)
    assert catalog.blobs.temp_files() == []
    assert check(catalog) == []
