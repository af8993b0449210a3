"""Blob-store fixtures: one SeaweedFS S3 server per session, and ``blob_backend``, which
runs a test on the local folder and on S3.

- ``s3_server``: the session's S3 server (tests/s3_server.py).
- ``blob_backend``: parametrized ``local`` / ``s3``; for ``s3`` it gives the test a
  prefix of its own in the session's bucket (SeaweedFS gives every bucket its own
  volumes, so one bucket keeps the server small), sets
  ``DREAMCRAWL_BLOBS=s3://<bucket>/<test>/objects`` and the AWS variables in the
  environment (CLI subprocesses see them too), and returns the settings to use (a
  fresh DREAMCRAWL_HOME, SQLite catalog).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from storage.settings import Settings
from tests.s3_server import S3Server, SeaweedFS, seaweedfs_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with seaweedfs_server() as server:
        yield server


BUCKET = "dreamcrawl-tests"


def prefix_for(name: str) -> str:
    """A prefix of a test's own in the session's bucket."""
    return "t-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def use_s3(server: S3Server, prefix: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process's environment at ``prefix`` in the session's bucket."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    client = server.client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    url = f"s3://{BUCKET}/{prefix}/objects"
    monkeypatch.setenv("DREAMCRAWL_BLOBS", url)
    return url


@pytest.fixture(params=["local", "s3"])
def blob_backend(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        use_s3(server, prefix_for(request.node.nodeid), monkeypatch)
    return Settings.from_env()


@pytest.fixture
def own_s3(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SeaweedFS]:
    """A SeaweedFS of the test's own, for tests that kill and restart it: the environment
    points at its bucket, and clients give up on a dead server after two attempts."""
    weed = SeaweedFS(tmp_path_factory.mktemp("s3"))
    server = weed.start()
    try:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # give up on the dead server soon
        monkeypatch.setenv("DREAMCRAWL_BLOBS", f"s3://{BUCKET}/objects")
        server.client().create_bucket(Bucket=BUCKET)
        yield weed
    finally:
        weed.kill()
