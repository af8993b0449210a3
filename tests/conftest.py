"""Fixtures shared by the whole suite.

- ``settings``: a fresh ``DREAMCRAWL_HOME`` (and SQLite catalog) per test, set in the
  environment so CLI subprocesses see it too.
- ``pg_admin_url``: one real PostgreSQL server for the session (tests/pg_server.py).
- ``db_url``: parametrized over SQLite and PostgreSQL; a test that takes it runs on both.
- ``catalog``: an opened, migrated catalog on ``db_url``'s database.
- ``s3_server`` and ``blob_backend`` (local folder and S3; tests/s3_fixture.py).
- ``converted_weights`` / ``engine`` (tests/weights_fixture.py) and ``prefect_server``
  (tests/prefect_fixture.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Catalog, dispose_engines, open_catalog
from storage.settings import Settings
from tests.pg_server import create_database, postgres_server

REPO = Path(__file__).resolve().parents[1]

# Session fixtures that modules ask for by name: real converted InceptionV3 weights
# (``converted_weights``, ``engine``) and one Prefect test server (``prefect_server``).
pytest_plugins = ["tests.weights_fixture", "tests.prefect_fixture", "tests.s3_fixture"]

# Prefect and friends must never try to reach the internet from the tests.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    home = tmp_path / "home"
    monkeypatch.setenv("DREAMCRAWL_HOME", str(home))
    monkeypatch.delenv("DREAMCRAWL_DB_URL", raising=False)
    yield Settings.from_env()
    dispose_engines()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "sqlite":
        url = settings.db_url
    else:
        admin = request.getfixturevalue("pg_admin_url")
        name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
        url = create_database(admin, name)
    monkeypatch.setenv("DREAMCRAWL_DB_URL", url)
    return url


@pytest.fixture
def catalog(db_url: str) -> Iterator[Catalog]:
    yield open_catalog(Settings.from_env())
    dispose_engines()
