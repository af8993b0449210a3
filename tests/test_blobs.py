"""The local blob store: layout, atomic writes, no overwrites, kills (what both backends
promise is tested in tests/test_blob_backends.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from storage.blobs import LocalBlobStore


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
