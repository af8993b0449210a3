"""`dreamcrawl demo --serve-site-only`: the bundled site alone, a local target for `serve`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx

from storage.settings import Settings
from tests.conftest import REPO
from tests.helpers import dreamcrawl


def test_serve_site_only_answers_on_loopback_until_interrupted(settings: Settings) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "demo", "--serve-site-only", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the socket listens
        assert first.startswith("demo site on http://127.0.0.1:"), first
        base_url = first.split()[3]
        index = httpx.get(base_url, timeout=10)
        cat = httpx.get(base_url + "photos/tabby-cat.jpg", timeout=10)
        robots = httpx.get(base_url + "robots.txt", timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert index.status_code == 200 and "dreamcrawl demo site" in index.text
    assert cat.headers["content-type"] == "image/jpeg" and cat.content[:2] == b"\xff\xd8"
    assert "Disallow: /private/" in robots.text
    assert proc.returncode == 0, stderr


def test_serve_site_only_on_a_busy_port_is_one_line_exit_2(settings: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = dreamcrawl("demo", "--serve-site-only", "--port", str(port), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dreamcrawl: error: cannot serve the demo site on 127.0.0.1:{port}: Address already in use"
    ]
