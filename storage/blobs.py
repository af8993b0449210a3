"""A content-addressed blob store on the local file system.

An object's key is the sha256 of its bytes; it lives at
``objects/<first 2 hex>/<remaining 62 hex>``. Writes go to a temporary file in
``objects/tmp/``, are fsynced, then linked into place with ``os.link``, which fails
if the object already exists: an object is never overwritten and never visible half
written, whatever happens to the writer. A killed writer can only leave a temporary
file behind, which ``catalog check --repair`` removes.

The new directory entry is fsynced too, unless a writer passes ``sync_dir=False``: it
then owes a :meth:`BlobStore.sync_dirs` call before anything refers to the key (the
crawler does that once per batch of catalog rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
KEY_RE = re.compile(r"^[0-9a-f]{64}$")
TMP_DIR = "tmp"


class BlobStore:
    """Read and write immutable objects by sha256 key under ``root``."""

    def __init__(self, root: Path | str, tmp_dir: Path | str | None = None) -> None:
        self.root = Path(root)
        # Writers may keep their temporary files elsewhere on the same file system (a
        # crawl run keeps them in its own folder, which it cleans when it resumes).
        self._tmp_dir = Path(tmp_dir) if tmp_dir is not None else self.root / TMP_DIR

    # -- paths ---------------------------------------------------------------

    def path(self, key: str) -> Path:
        """Where the object ``key`` lives (whether or not it exists)."""
        if not KEY_RE.match(key):
            raise ValueError(f"not a blob key (64 lowercase hex digits): {key!r}")
        return self.root / key[:2] / key[2:]

    @property
    def tmp_dir(self) -> Path:
        return self._tmp_dir

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    # -- writing -------------------------------------------------------------

    def put_bytes(self, data: bytes, *, sync_dir: bool = True) -> str:
        """Store ``data``; return its key. Storing the same bytes twice is a no-op."""
        return self.put_chunks([data], sync_dir=sync_dir)

    def put_file(self, source: Path | str, *, sync_dir: bool = True) -> str:
        """Store a copy of the file at ``source``; return its key."""
        with open(source, "rb") as fh:
            return self.put_stream(fh, sync_dir=sync_dir)

    def put_stream(self, stream: BinaryIO, *, sync_dir: bool = True) -> str:
        """Store everything read from ``stream``; return its key."""
        return self.put_chunks(iter(lambda: stream.read(CHUNK), b""), sync_dir=sync_dir)

    def put_chunks(self, chunks: Iterable[bytes], *, sync_dir: bool = True) -> str:
        """Store the concatenation of ``chunks`` atomically; return its key.

        The object's bytes are always durable before it becomes visible. With
        ``sync_dir=False`` its directory entry is not yet: call :meth:`sync_dirs` with
        the key before recording it anywhere that must survive a power cut.
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            key = digest.hexdigest()
            self._publish(tmp, key, sync_dir=sync_dir)
            return key
        finally:
            tmp.unlink(missing_ok=True)

    def _publish(self, tmp: Path, key: str, *, sync_dir: bool = True) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return  # same content is already stored: objects are never overwritten
        os.chmod(final, 0o444)
        if sync_dir:
            _fsync_dir(final.parent)

    def sync_dirs(self, keys: Iterable[str]) -> None:
        """Make the directory entries of ``keys`` durable: one fsync per folder."""
        for folder in sorted({self.path(key).parent for key in keys}):
            _fsync_dir(folder)

    # -- reading -------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """Open the object for reading; FileNotFoundError if it is missing."""
        return open(self.path(key), "rb")

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def hash_of(self, key: str) -> str:
        """The sha256 of the object's current bytes (differs from ``key`` if corrupt)."""
        digest = hashlib.sha256()
        with self.open(key) as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def iter_keys(self) -> Iterator[str]:
        """Every stored key, in no particular order."""
        if not self.root.is_dir():
            return
        for prefix in sorted(os.listdir(self.root)):
            if len(prefix) != 2 or prefix == TMP_DIR:
                continue
            folder = self.root / prefix
            if not folder.is_dir():
                continue
            for rest in os.listdir(folder):
                key = prefix + rest
                if KEY_RE.match(key):
                    yield key

    def temp_files(self) -> list[Path]:
        """Temporary files left behind by writers that did not finish."""
        if not self.tmp_dir.is_dir():
            return []
        return sorted(p for p in self.tmp_dir.iterdir() if p.is_file())

    # -- maintenance (used by `catalog check --repair` only) ----------------

    def delete(self, key: str) -> None:
        """Remove an object. Only integrity repair calls this, for orphans."""
        path = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_dir(path: Path) -> None:
    """Make a rename or link in ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
