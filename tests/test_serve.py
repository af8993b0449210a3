"""`dreamcrawl serve`: config validation, and a scheduled crawl firing on its cron.

The cron test starts a real `prefect server start` (the scheduler service does not run
in Prefect's temporary test server), serves the deployments with `dreamcrawl serve` in a
second process, and waits for the scheduled crawl to run against the demo site.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipeline.demo_site import serve_demo_site
from storage.db import open_catalog
from storage.models import CrawlRun, CrawlStatus, Sighting
from storage.settings import Settings
from tests.conftest import REPO
from tests.helpers import dreamcrawl
from tests.prefect_fixture import wait_for


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[crawl]]\nname='a'\ncron='61 * * * *'\nkeywords=['cat']\n", "invalid cron '61 * * * *'"),
        ("[[crawl]]\nname='a'\ncron='* * * * *'\n", "a scheduled crawl needs keywords"),
        (
            "[[crawl]]\nname='a'\ncron='* * * * *'\nkeywords=['x']\nmax_imgs=3\n",
            "unknown parameter 'max_imgs'",
        ),
        ("[[crawl]]\ncron='* * * * *'\n", "needs at least name and cron"),
        ("[schedules]\n", "unknown section 'schedules'"),
        ("[pools]\ngpu = 'big'\n", "[pools] takes crawl"),
        ("[[crawl]\n", "is not valid TOML/YAML"),
        (
            "[[crawl]]\nname='a'\ncron='0 3 * * *'\ntimezone='Mars/Olympus'\nkeywords=['cat']\n",
            "unknown timezone 'Mars/Olympus'",
        ),
        (
            "[[crawl]]\nname='a'\ncron='* * * * *'\nkeywords=['x']\nmax_images='many'\n",
            "invalid parameter max_images: Input should be a valid integer",
        ),
        (
            "[[crawl]]\nname='a'\ncron='* * * * *'\nkeywords='x'\n",
            "keywords: Input should be a valid list",
        ),
        ("[[crawl]]\nname='a'\ncron='* * * * *'\nkeywords=['x']\npaused='yes'\n", "paused must be"),
        ("[on_demand]\npresets=['nope']\n", "unknown preset 'nope'"),
    ],
)
def test_bad_serve_config_is_one_line_exit_2(
    settings: Settings, tmp_path: Path, text: str, fragment: str
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(text)
    result = dreamcrawl("serve", "--config", str(config), "--check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_serve_refuses_a_bad_timezone_before_serving(settings: Settings, tmp_path: Path) -> None:
    """Without --check too: one line and exit 2, not a traceback once Prefect has started."""
    config = tmp_path / "serve.toml"
    config.write_text("[[crawl]]\nname='a'\ncron='0 3 * * *'\ntimezone='Nowhere'\nkeywords=['x']\n")
    result = dreamcrawl("serve", "--config", str(config), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dreamcrawl: error: {config}: crawl[0]: unknown timezone 'Nowhere'; use an IANA name "
        "such as 'UTC' or 'Europe/Paris'"
    ]


def test_yaml_config_is_accepted(settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(
        "crawl:\n  - name: cats-nightly\n    cron: '0 3 * * *'\n    keywords: [cat]\n"
        "on_demand:\n  presets: [classic]\n"
    )
    result = dreamcrawl("serve", "--config", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("cats-nightly\tcrawl\tcron 0 3 * * *")
    assert "stylize\ton-demand" in result.stdout


def test_scheduled_crawl_fires_on_its_cron(
    settings: Settings, tmp_path: Path, prefect_api: dict[str, str]
) -> None:
    catalog = open_catalog(settings)
    with serve_demo_site() as base_url:
        config = tmp_path / "serve.toml"
        config.write_text(
            "[[crawl]]\n"
            "name = 'cats-every-minute'\n"
            "cron = '* * * * *'\n"
            "keywords = ['cat']\n"
            f"start_urls = ['{base_url}']\n"
            "allow_private = true\n"
            "max_images = 5\n"
        )
        with open(tmp_path / "serve.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "serve", "--config", str(config)],
                cwd=REPO,
                env={**os.environ, **prefect_api},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        api = prefect_api["PREFECT_API_URL"]

        def scheduled_runs() -> list[dict]:
            return flow_runs_of(api, "cats-every-minute")

        try:
            # The scheduler creates runs ahead of time...
            wait_for(lambda: len(scheduled_runs()) >= 1, "scheduled runs")
            # ...and the first one runs at the next minute boundary.
            wait_for(
                lambda: any(r["state_type"] == "COMPLETED" for r in scheduled_runs()),
                "scheduled crawl to complete",
            )
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=60)

    completed = [r for r in scheduled_runs() if r["state_type"] == "COMPLETED"]
    with catalog.session() as session:
        runs = session.scalars(sa.select(CrawlRun).where(CrawlRun.status == CrawlStatus.FINISHED))
        by_flow_run = {r.prefect_flow_run_id: r for r in runs}
        fired = by_flow_run[completed[0]["id"]]
        assert fired.keywords == ["cat"]
        sightings = session.scalars(
            sa.select(Sighting).where(Sighting.crawl_run_id == fired.id)
        ).all()
    assert sightings, "the scheduled crawl found the demo site's cat"


def flow_runs_of(api: str, deployment: str) -> list[dict]:
    """The flow runs of a deployment, from the Prefect server's REST API."""
    body = {"deployments": {"name": {"any_": [deployment]}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=5).json()
