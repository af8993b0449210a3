"""What every blob store promises, on the local folder and on a real S3 server
(SeaweedFS): round trips, no overwrites, racing writers, verification, paged listings,
killed writers, and one clear line for a store that cannot be used."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.blobs import LocalBlobStore
from storage.blobstores import open_blob_store
from storage.db import open_catalog
from storage.integrity import check, repair
from storage.models import Image
from storage.s3blobs import PART_SIZE, S3BlobStore
from storage.settings import Settings
from tests.conftest import REPO
from tests.helpers import add_image, dreamcrawl, photo_bytes
from tests.s3_fixture import prefix_for, use_s3
from tests.s3_server import READER, S3Server


def test_round_trip_exists_size_verify(blob_backend: Settings) -> None:
    store = open_blob_store(blob_backend)
    data = b"dreamcrawl" * 1000
    key = store.put_bytes(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.exists(key) and store.size(key) == len(data)
    assert store.read_bytes(key) == data
    with store.open(key) as fh:
        fh.seek(10)  # Pillow needs a seekable file object
        assert fh.read(10) == b"dreamcrawl"
    assert store.verify(key) is None
    assert list(store.iter_keys()) == [key]
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    assert store.verify(missing) == "missing"
    with pytest.raises(FileNotFoundError):
        store.open(missing)


def test_large_objects_go_in_parts_and_round_trip(blob_backend: Settings, tmp_path: Path) -> None:
    store = open_blob_store(blob_backend)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2 * PART_SIZE + 17))
    key = store.put_file(source)
    assert key == hashlib.sha256(source.read_bytes()).hexdigest()
    with open(source, "rb") as fh:
        assert store.put_stream(fh, key=key) == key  # already there: a no-op
    assert store.hash_of(key) == key and store.size(key) == source.stat().st_size
    assert store.unfinished() == []


def test_bytes_that_do_not_match_the_key_are_never_stored(blob_backend: Settings) -> None:
    store = open_blob_store(blob_backend)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ValueError, match="do not hash"):
        store.put_bytes(b"these bytes", key=wrong)
    big = os.urandom(PART_SIZE + 1)
    with pytest.raises(ValueError, match="do not hash"):
        store.put_stream(io.BytesIO(big), key=wrong)
    assert not store.exists(wrong) and list(store.iter_keys()) == []
    assert store.unfinished() == []


def test_racing_writers_end_with_one_intact_object(blob_backend: Settings) -> None:
    store = open_blob_store(blob_backend)
    data = photo_bytes("astronaut", size=256)
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def write() -> None:
        barrier.wait()
        keys.append(store.put_bytes(data))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys) == 8
    assert list(store.iter_keys()) == keys[:1]
    assert store.read_bytes(keys[0]) == data


def test_s3_never_overwrites(s3_server: S3Server, settings: Settings, monkeypatch) -> None:
    use_s3(s3_server, prefix_for("never-overwrites"), monkeypatch)
    store = open_blob_store(Settings.from_env())
    assert isinstance(store, S3BlobStore)
    key = store.put_bytes(b"first")
    before = store.client.head_object(Bucket=store.bucket, Key=store.name(key))
    assert store.put_bytes(b"first") == key
    after = store.client.head_object(Bucket=store.bucket, Key=store.name(key))
    assert after["LastModified"] == before["LastModified"]
    assert after["ETag"] == before["ETag"]


def test_listing_is_paged(s3_server: S3Server, settings: Settings, monkeypatch) -> None:
    use_s3(s3_server, prefix_for("paged"), monkeypatch)
    store = open_blob_store(Settings.from_env())
    assert isinstance(store, S3BlobStore)
    keys = {store.put_bytes(str(i).encode()) for i in range(25)}
    store.list_page = 7
    requests: list[int] = []
    store.client.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda parsed, **_: requests.append(len(parsed.get("Contents", []))),
    )
    assert {obj.key for obj in store.list_objects()} == keys
    assert requests == [7, 7, 7, 4]


def test_catalog_check_and_repair_on_both_backends(blob_backend: Settings) -> None:
    catalog = open_catalog(blob_backend)
    healthy = add_image(catalog, photo_bytes("chelsea"))
    gone = add_image(catalog, photo_bytes("coffee"))
    with catalog.session() as session:
        keys = dict(session.execute(sa.select(Image.id, Image.blob_key)).all())
    catalog.blobs.delete(keys[gone])
    orphan = catalog.blobs.put_bytes(b"nobody refers to me")
    result = dreamcrawl("catalog", "check")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"missing: images #{gone}: blob {keys[gone]} is missing",
        f"orphan: blob {orphan} is not referenced by any row",
    ]
    fixed = dreamcrawl("catalog", "check", "--repair", "--min-age", "0")
    assert f"repair: marked images #{gone} broken" in fixed.stdout
    assert f"repair: removed orphan {orphan}" in fixed.stdout
    assert not catalog.blobs.exists(orphan) and catalog.blobs.exists(keys[healthy])
    assert dreamcrawl("catalog", "check").returncode == 0


def test_s3_corrupt_object_is_found(s3_server: S3Server, settings: Settings, monkeypatch) -> None:
    use_s3(s3_server, prefix_for("corrupt"), monkeypatch)
    catalog = open_catalog(Settings.from_env())
    image_id = add_image(catalog, photo_bytes("rocket"))
    with catalog.session() as session:
        key = session.scalar(sa.select(Image.blob_key))
    store = catalog.blobs
    assert isinstance(store, S3BlobStore)
    # Bit rot behind our back: another client replaces the object's bytes.
    store.client.put_object(Bucket=store.bucket, Key=store.name(key), Body=b"bit rot")
    problems = check(catalog)
    assert [(p.kind, p.row_id) for p in problems] == [("corrupt", image_id)]


KILLED_WRITER = textwrap.dedent(
    """
    import io, os, sys
    from storage.db import open_catalog
    from storage.records import ImageFacts, upsert_image
    from storage.s3blobs import PART_SIZE
    from storage.settings import Settings

    catalog = open_catalog(Settings.from_env())
    data = os.urandom(3 * PART_SIZE)
    import hashlib
    key = hashlib.sha256(data).hexdigest()
    print(key, flush=True)

    class Stream(io.BytesIO):
        def read(self, size=-1):
            if self.tell() >= 2 * PART_SIZE + 65536:  # two parts are uploaded by now
                print("uploading", flush=True)
                sys.stdin.readline()  # blocks until the test kills us
            return super().read(min(size, 65536) if size and size > 0 else 65536)

    catalog.blobs.put_stream(Stream(data), key=key)
    with catalog.session() as session:
        upsert_image(session, ImageFacts(sha256=key, width=1, height=1, format="PNG", bytes=1))
    """
)


def test_writer_killed_mid_upload_leaves_no_object_and_no_row(blob_backend: Settings) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    key = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "uploading"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    catalog = open_catalog(blob_backend)
    assert not catalog.blobs.exists(key)
    assert list(catalog.blobs.iter_keys()) == []
    with catalog.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Image)) == 0
    # What it left is one unfinished write (a temporary file, an open multipart upload),
    # which check finds and repair removes.
    problems = check(catalog)
    assert [p.kind for p in problems] == ["stale-temp"]
    assert len(catalog.blobs.unfinished()) == 1
    repair(catalog, problems, min_age=0)
    assert catalog.blobs.unfinished() == []
    assert check(catalog) == []


def _check_line(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return dreamcrawl("crawl", "-k", "cats", "--start-url", "http://127.0.0.1:9/", env=env)


def test_unusable_s3_store_is_one_line_and_exit_2(
    s3_server: S3Server, settings: Settings, monkeypatch
) -> None:
    url = use_s3(s3_server, prefix_for("preflight"), monkeypatch)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    cases = {
        "cannot reach the S3 endpoint": {"AWS_ENDPOINT_URL": dead, "AWS_MAX_ATTEMPTS": "1"},
        "no AWS credentials": {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
        "denied": {"AWS_SECRET_ACCESS_KEY": "wrong"},
        "no such bucket": {"DREAMCRAWL_BLOBS": "s3://no-such-bucket/objects"},
        "writes to": {"AWS_ACCESS_KEY_ID": READER[0], "AWS_SECRET_ACCESS_KEY": READER[1]},
        "expected s3://BUCKET": {"DREAMCRAWL_BLOBS": "s3://x"},
    }
    for expected, env in cases.items():
        result = _check_line(env)
        assert result.returncode == 2, (expected, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (expected, result.stderr)
        assert lines[0].startswith("dreamcrawl: error:")
    # Nothing started: no crawl run was recorded.
    catalog = open_catalog(Settings.from_env())
    with catalog.session() as session:
        assert session.execute(sa.text("SELECT count(*) FROM crawl_runs")).scalar_one() == 0
    # Reading is enough for `catalog check`, so the read-only identity may run it.
    reader = {"AWS_ACCESS_KEY_ID": READER[0], "AWS_SECRET_ACCESS_KEY": READER[1]}
    assert dreamcrawl("catalog", "check", env=reader).returncode == 0
    assert url.startswith("s3://")


def test_local_default_is_unchanged(settings: Settings) -> None:
    store = open_blob_store(settings)
    assert isinstance(store, LocalBlobStore)
    assert store.root == settings.home / "objects"
