"""Take the screenshots in docs/operating.md: the Custom-run form and a run's artifacts.

Starts a private ``prefect server start`` (with its UI) and ``dreamcrawl serve`` in a
throw-away data folder, dreams two sample photos with the stylize deployment, and points
headless Chromium at the pages an operator opens. Run it from the repository:

    .venv/bin/python scripts/ui_screenshots.py docs/img

It needs Debian's chromium and the InceptionV3 weights (``dreamcrawl weights fetch``),
and starts Chromium the way the test suite does (tests/browser.py).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from tests.browser import CHROMIUM_FLAGS as TEST_FLAGS
from tests.pg_server import _free_port as free_port
from tests.prefect_fixture import wait_for

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [*TEST_FLAGS, "--hide-scrollbars"]


def screenshot(url: str, out: Path, profile: Path, height: int = 1400) -> None:
    subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
         f"--window-size=1400,{height}", "--virtual-time-budget=20000",
         f"--screenshot={out}", url],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    print(f"wrote {out}")


def add_photos(env: dict[str, str]) -> None:
    from PIL import Image
    from skimage import data

    for name in ("chelsea", "coffee"):
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((320, 320))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        path = Path(env["DREAMCRAWL_HOME"]) / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "import", env["DREAMCRAWL_HOME"], "-k", "sample"],
        cwd=REPO, env=env, check=True, capture_output=True,
    )  # fmt: skip


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dreamcrawl-shots-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "DREAMCRAWL_HOME": str(work / "home"),
    }
    add_photos(env)
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    serving = None
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, "server")
        serving = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deployment = wait_for(
            lambda: (
                httpx.get(f"{api}/deployments/name/stylize/stylize", timeout=5).json().get("id")
            ),
            "the stylize deployment",
        )
        base = f"http://127.0.0.1:{port}"
        screenshot(f"{base}/deployments/deployment/{deployment}/run", out / "custom-run.png",
                   work / "chrome")  # fmt: skip
        created = httpx.post(
            f"{api}/deployments/{deployment}/create_flow_run",
            json={"parameters": {"dream": {"presets": ["fast"], "steps": 10}}},
            timeout=10,
        ).json()
        run_id = created["id"]
        wait_for(
            lambda: (
                httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state_type"]
                == "COMPLETED"
            ),
            "the stylize run",
            deadline=900,
        )
        artifacts = httpx.post(
            f"{api}/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["stylize-summary"]}}},
            timeout=10,
        ).json()
        screenshot(f"{base}/artifacts/artifact/{artifacts[0]['id']}", out / "summary.png",
                   work / "chrome", height=1200)  # fmt: skip
    finally:
        for proc in (serving, server):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
