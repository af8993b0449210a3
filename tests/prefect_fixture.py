"""One Prefect test server for the whole session (its first start runs migrations)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="dreamcrawl-prefect-")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from prefect.testing.utilities import prefect_test_harness

    import flows  # noqa: F401  (sets telemetry off before Prefect loads)

    with prefect_test_harness(server_startup_timeout=90):
        yield
