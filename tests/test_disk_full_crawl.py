"""The blob disk or the catalog's disk fills up in the middle of a crawl (a small
tmpfs, nearly full before the crawl starts), or a blob write fails with another I/O
error (a file size limit): the crawl stops ``interrupted`` with one line and a non-zero
exit, no URL gets an ``error`` row or goes missing, nothing is left half written, and
``--resume`` finishes the crawl once there is room again.

Without the right to mount a tmpfs, the disks are stood in for by a file size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored): writes past it fail with EFBIG, a real I/O error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from storage.db import dispose_engines, open_catalog
from storage.models import CrawlRun, Sighting
from storage.settings import Settings
from tests.helpers import REPO
from tests.site_fixture import LocalSite, encode, serve
from tests.write_failures import build, crawl_args, resume_and_check

ROOM = 40 * 1024  # what the nearly full disk has left: a few images' worth
FSIZE_LIMIT = 512 * 1024  # the stand-in: larger than any log, journal or small image


@contextlib.contextmanager
def small_disk(size: str = "2m") -> Iterator[Path | None]:
    """A tmpfs of ``size``; None where mounting is not permitted (use the stand-in)
    or DREAMCRAWL_TEST_NO_MOUNT is set."""
    folder = Path(tempfile.mkdtemp(prefix="dreamcrawl-small-disk-"))
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    if os.environ.get("DREAMCRAWL_TEST_NO_MOUNT"):  # to exercise the stand-in
        mount = ["false"]
    mounted = subprocess.run(mount, capture_output=True)
    try:
        yield folder if mounted.returncode == 0 else None
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def fill(disk: Path, room: int = ROOM) -> Path:
    """Fill ``disk`` up but for ``room`` bytes; the filler file, to free space later."""
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - room))
    return filler


def limited(size: int) -> Callable[[], None]:
    """For the crawl's processes: writes past ``size`` bytes of a file fail with EFBIG
    (SIGXFSZ ignored, so the write returns the error instead of killing the process)."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return preexec


def large_photo(seed: int) -> bytes:
    """A real JPEG larger than FSIZE_LIMIT (noise does not compress)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (700, 900, 3), dtype=np.uint8)
    return encode(PILImage.fromarray(pixels), quality=95)


def crawl(
    site: LocalSite, preexec: Callable[[], None] | None = None, *settings: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline.cli", *crawl_args(site, *settings)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180,
                          preexec_fn=preexec)  # fmt: skip


def assert_stopped_midway(
    result: subprocess.CompletedProcess[str], reason: str, *statuses: str
) -> None:
    """One line and a non-zero exit; the run says one of ``statuses`` (default
    ``interrupted``; ``running`` where the catalog could not record its end) and ended
    only some URLs."""
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], result.stderr
    assert "--resume 1" in lines[0] or "interrupted" in result.stdout, result.stderr
    dispose_engines()
    catalog = open_catalog(Settings.from_env())
    with catalog.read_session() as session:
        run = session.get(CrawlRun, 1)
        recorded = list(session.scalars(select(Sighting.url)))
    assert run is not None, "no run row"
    assert run.status in (statuses or ("interrupted",)), (run.status, run.error)
    assert 0 < len(recorded) < 30, recorded  # it did stop midway


def test_a_full_blob_disk_stops_the_crawl_and_resume_finishes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_disk() as disk, serve(LocalSite()) as site:
        if disk is not None:
            monkeypatch.setenv("DREAMCRAWL_BLOBS", str(disk / "objects"))
            filler = fill(disk)
            urls = build(site)
            first = crawl(site)
        else:  # the stand-in: images past the first few are larger than the limit
            urls = build(site, large=large_photo)
            first = crawl(site, limited(FSIZE_LIMIT))
        assert_stopped_midway(first, "blob-store-unavailable")
        if disk is not None:
            filler.unlink()  # room again
        resume_and_check(urls)


def test_a_blob_write_failing_with_an_io_error_stops_the_crawl(settings: Settings) -> None:
    """EFBIG (a file size limit), whether or not a tmpfs can be mounted."""
    with serve(LocalSite()) as site:
        urls = build(site, large=large_photo)
        first = crawl(site, limited(FSIZE_LIMIT))
        assert_stopped_midway(first, "blob-store-unavailable")
        resume_and_check(urls)


def test_a_full_catalog_disk_stops_the_crawl_and_resume_finishes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_disk() as disk, serve(LocalSite()) as site:
        folder = disk if disk is not None else settings.home
        database = folder / "catalog.sqlite"
        monkeypatch.setenv("DREAMCRAWL_DB_URL", f"sqlite:///{database}")
        open_catalog(Settings.from_env())  # migrated while there is room
        dispose_engines()
        urls = build(site)
        retry = "DREAMCRAWL_WRITE_RETRY_SECONDS=1"
        if disk is not None:
            filler = fill(disk, room=160 * 1024)
            first = crawl(site, None, retry)
        else:  # the stand-in: the write-ahead log may not grow past a few commits
            first = crawl(site, limited(64 * 1024), retry, "LOG_FILE=/dev/null")
        # Whether the run's end still fit on the disk decides which it says.
        assert_stopped_midway(first, "catalog", "interrupted", "running")
        if disk is not None:
            filler.unlink()
        resume_and_check(urls)
