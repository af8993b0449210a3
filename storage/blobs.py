"""The content-addressed blob store: what every caller needs, and the local folder.

An object's key is the sha256 of its bytes. :class:`BlobStore` is the interface the
rest of dreamcrawl uses (put bytes, a file or a stream; open, read, exists, size; list;
verify; delete for repair only) and never a file path, so the same code runs on either
backend: :class:`LocalBlobStore` here, or :class:`storage.s3blobs.S3BlobStore` for
S3-compatible object storage (``DREAMCRAWL_BLOBS=s3://bucket/prefix``);
:func:`storage.blobstores.open_blob_store` picks one from the settings.

The local store keeps an object at ``<root>/<first 2 hex>/<remaining 62 hex>``. Writes
go to a temporary file in ``<root>/tmp/``, are fsynced, then linked into place with
``os.link``, which fails if the object already exists: an object is never overwritten
and never visible half written, whatever happens to the writer. A killed writer can
only leave a temporary file behind, which ``catalog check --repair`` removes.

The new directory entry is fsynced too, unless a writer passes ``sync_dir=False``: it
then owes a :meth:`BlobStore.sync_dirs` call before anything refers to the key (the
crawler does that once per batch of catalog rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from storage.errors import BlobStoreUnavailable

CHUNK = 1 << 20
KEY_RE = re.compile(r"^[0-9a-f]{64}$")
TMP_DIR = "tmp"


def check_key(key: str) -> str:
    """``key`` itself, if it is a blob key (ValueError otherwise: never a path)."""
    if not KEY_RE.match(key):
        raise ValueError(f"not a blob key (64 lowercase hex digits): {key!r}")
    return key


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing shows it."""

    key: str
    size: int
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class Unfinished:
    """A write a writer began and never finished: a temporary file, or an open S3
    multipart upload. ``ident`` is what :meth:`BlobStore.discard` needs to remove it."""

    ident: str
    started: float  # seconds since the epoch
    detail: str


class BlobStore(ABC):
    """Immutable objects by sha256 key. Subclasses store and fetch the bytes."""

    # -- writing -------------------------------------------------------------

    def put_bytes(self, data: bytes, *, sync_dir: bool = True, key: str | None = None) -> str:
        """Store ``data``; return its key. Storing the same bytes twice is a no-op.
        With ``key``, bytes that do not hash to it raise ValueError and store nothing."""
        return self.put_chunks([data], sync_dir=sync_dir, key=key)

    def put_file(self, source: Path | str, *, sync_dir: bool = True) -> str:
        """Store a copy of the file at ``source``; return its key."""
        with open(source, "rb") as fh:
            return self.put_stream(fh, sync_dir=sync_dir)

    def put_stream(self, stream: BinaryIO, *, sync_dir: bool = True, key: str | None = None) -> str:
        """Store everything read from ``stream``; return its key (checked against
        ``key`` if given, before the object becomes visible)."""
        chunks = iter(lambda: stream.read(CHUNK), b"")
        return self.put_chunks(chunks, sync_dir=sync_dir, key=key)

    @abstractmethod
    def put_chunks(
        self, chunks: Iterable[bytes], *, sync_dir: bool = True, key: str | None = None
    ) -> str:
        """Store the concatenation of ``chunks``; return its key. The object is durable
        and complete before it is visible, and an existing object is never replaced."""

    def sync_dirs(self, keys: Iterable[str]) -> None:  # noqa: B027 (a no-op by default)
        """Make the objects ``keys`` durable where a put left that to the caller."""

    def for_run(self, tmp_dir: Path) -> BlobStore:
        """This store, keeping a writer's temporary files in ``tmp_dir`` (a crawl run's
        folder, which the run cleans when it resumes) where it keeps any."""
        return self

    # -- reading -------------------------------------------------------------

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable file object with the object's bytes; FileNotFoundError if missing."""

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; FileNotFoundError if missing."""

    def copy_to(self, key: str, target: Path) -> None:
        """Write the object's bytes to the local file ``target`` (for tools that need a
        path, such as a gallery folder)."""
        with self.open(key) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)

    def hash_of(self, key: str) -> str:
        """The sha256 of the object's current bytes (differs from ``key`` if corrupt)."""
        digest = hashlib.sha256()
        with self.open(key) as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def verify(self, key: str) -> str | None:
        """None if the object is intact, else ``missing`` or ``corrupt``."""
        try:
            return None if self.hash_of(key) == key else "corrupt"
        except FileNotFoundError:
            return "missing"

    @abstractmethod
    def list_objects(self) -> Iterator[StoredObject]:
        """Every stored object, a page at a time (never the whole listing in memory)."""

    def iter_keys(self) -> Iterator[str]:
        """Every stored key, in no particular order."""
        return (obj.key for obj in self.list_objects())

    @abstractmethod
    def unfinished(self) -> list[Unfinished]:
        """Writes that began and never finished (a killed writer's leftovers)."""

    # -- maintenance (used by `catalog check --repair` and crawl recovery only) -------

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object (repair of orphans, recovery of a killed crawl run)."""

    @abstractmethod
    def discard(self, item: Unfinished) -> None:
        """Remove an unfinished write."""

    @abstractmethod
    def describe(self) -> str:
        """Where the objects are, for messages (a folder or an ``s3://`` URL)."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where one object is, as a link (``file://`` or ``s3://``)."""

    def preflight(self, *, write: bool = True) -> None:  # noqa: B027 (local: nothing to probe)
        """Raise :class:`storage.errors.UserError` if the store cannot be used."""


class LocalBlobStore(BlobStore):
    """Read and write immutable objects by sha256 key under the folder ``root``."""

    def __init__(self, root: Path | str, tmp_dir: Path | str | None = None) -> None:
        self.root = Path(root)
        # Writers may keep their temporary files elsewhere on the same file system (a
        # crawl run keeps them in its own folder, which it cleans when it resumes).
        self._tmp_dir = Path(tmp_dir) if tmp_dir is not None else self.root / TMP_DIR

    def path(self, key: str) -> Path:
        """Where the object ``key`` lives (whether or not it exists)."""
        check_key(key)
        return self.root / key[:2] / key[2:]

    @property
    def tmp_dir(self) -> Path:
        return self._tmp_dir

    def for_run(self, tmp_dir: Path) -> LocalBlobStore:
        if _device(tmp_dir) != _device(self.root):
            return self  # a link cannot cross file systems: keep them in <root>/tmp
        return LocalBlobStore(self.root, tmp_dir=tmp_dir)

    def describe(self) -> str:
        return str(self.root)

    def url(self, key: str) -> str:
        return self.path(key).as_uri()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    # -- writing -------------------------------------------------------------

    def put_chunks(
        self, chunks: Iterable[bytes], *, sync_dir: bool = True, key: str | None = None
    ) -> str:
        """Store the concatenation of ``chunks`` atomically; return its key.

        The object's bytes are always durable before it becomes visible. With
        ``sync_dir=False`` its directory entry is not yet: call :meth:`sync_dirs` with
        the key before recording it anywhere that must survive a power cut. A write that
        fails (disk full, I/O error) raises :class:`BlobStoreUnavailable` and leaves
        nothing behind; an error reading ``chunks`` passes through as it is.
        """
        try:
            return self._put(_reading(chunks), sync_dir=sync_dir, key=key)
        except _SourceFailed as failed:
            raise failed.error from None  # reading the source failed: its own error
        except OSError as exc:  # disk full, I/O error, no permission: not the data's fault
            raise BlobStoreUnavailable(f"{self.describe()}: cannot write: {exc}") from exc

    def _put(self, chunks: Iterable[bytes], *, sync_dir: bool, key: str | None) -> str:
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
            actual = digest.hexdigest()
            if key is not None and key != actual:
                raise ValueError(f"bytes do not hash to {key}")
            self._publish(tmp, actual, sync_dir=sync_dir)
            return actual
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
        return open(self.path(key), "rb")

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def copy_to(self, key: str, target: Path) -> None:
        shutil.copyfile(self.path(key), target)

    def list_objects(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for prefix in sorted(os.listdir(self.root)):
            if len(prefix) != 2 or prefix == TMP_DIR:
                continue
            folder = self.root / prefix
            if not folder.is_dir():
                continue
            with os.scandir(folder) as entries:
                for entry in entries:
                    key = prefix + entry.name
                    if KEY_RE.match(key):
                        stat = entry.stat()
                        yield StoredObject(key, stat.st_size, stat.st_mtime)

    def temp_files(self) -> list[Path]:
        """Temporary files left behind by writers that did not finish."""
        if not self.tmp_dir.is_dir():
            return []
        return sorted(p for p in self.tmp_dir.iterdir() if p.is_file())

    def unfinished(self) -> list[Unfinished]:
        found = []
        for path in self.temp_files():
            with contextlib.suppress(FileNotFoundError):
                found.append(
                    Unfinished(str(path), path.stat().st_mtime, f"unfinished write {path}")
                )
        return found

    # -- maintenance ----------------------------------------------------------

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def discard(self, item: Unfinished) -> None:
        Path(item.ident).unlink(missing_ok=True)


def unfinished_files(paths: Iterable[Path]) -> list[Unfinished]:
    """Temporary files as unfinished writes (those already gone are skipped)."""
    found = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            found.append(Unfinished(str(path), path.stat().st_mtime, f"unfinished write {path}"))
    return found


def _device(path: Path) -> int:
    """The file system of ``path``, or of its nearest existing folder."""
    for folder in (path, *path.absolute().parents):
        try:
            return folder.stat().st_dev
        except OSError:
            continue
    return -1


class _SourceFailed(Exception):
    """Reading the bytes to store failed (an OSError of the source, not of the store)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _reading(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks``, with the source's own read errors told apart from the store's."""
    source = iter(chunks)
    while True:
        try:
            chunk = next(source)
        except StopIteration:
            return
        except OSError as exc:
            raise _SourceFailed(exc) from exc
        yield chunk


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
