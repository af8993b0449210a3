"""The CLI's contract: exit codes, one-line errors, settings from the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage.settings import Settings
from tests.conftest import REPO
from tests.helpers import dreamcrawl


def test_settings_from_variables(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "DREAMCRAWL_HOME": str(tmp_path / "h"),
            "DREAMCRAWL_DB_URL": "postgresql+psycopg://u@127.0.0.1/db",
            "DREAMCRAWL_WEIGHTS": str(tmp_path / "w.h5"),
        }
    )
    assert settings.home == tmp_path / "h"
    assert settings.objects_dir == tmp_path / "h" / "objects"
    assert settings.db_url == "postgresql+psycopg://u@127.0.0.1/db"
    assert settings.weights_override == tmp_path / "w.h5"


def test_default_home_is_created_under_xdg_data(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "DREAMCRAWL_HOME": "", "DREAMCRAWL_DB_URL": ""}
    result = dreamcrawl("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "xdg" / "dreamcrawl" / "catalog.sqlite").is_file()
    assert (tmp_path / "xdg" / "dreamcrawl" / "objects").is_dir()


def test_db_upgrade_then_current(settings: Settings) -> None:
    first = dreamcrawl("db", "upgrade")
    assert first.returncode == 0
    assert "upgraded empty -> " in first.stdout
    again = dreamcrawl("db", "upgrade")
    assert "already at revision" in again.stdout
    current = dreamcrawl("db", "current")
    assert current.returncode == 0
    assert current.stdout.strip().endswith("(up to date)")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("catalog", "check", "--min-age", "soon"), "invalid float value: 'soon'"),
        (("db",), "the following arguments are required"),
        (("catalog", "check", "--nope"), "unrecognized arguments: --nope"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    settings: Settings, args: tuple[str, ...], fragment: str
) -> None:
    result = dreamcrawl(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dreamcrawl")
    assert fragment in lines[0]


def test_bad_database_url_is_exit_2(settings: Settings) -> None:
    result = dreamcrawl("catalog", "check", env={"DREAMCRAWL_DB_URL": "not a url at all"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "dreamcrawl: error: DREAMCRAWL_DB_URL is not a database URL: 'not a url at all'"
    )


def test_version_and_help_do_not_import_tensorflow(settings: Settings) -> None:
    code = (
        "import sys; from pipeline.cli import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules, 'scrapy' in sys.modules, 'prefect' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False False"
    version = dreamcrawl("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("dreamcrawl ")
