"""`dreamcrawl stylize` and `dreamcrawl run` through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from tests.helpers import add_image, dreamcrawl, photo_bytes


def test_stylize_command_dreams_the_catalog(
    settings: Settings,
    converted_weights: Path,
    tmp_path: Path,
) -> None:
    catalog = open_catalog(settings)
    add_image(catalog, photo_bytes("rocket", size=128))
    env = {"DREAMCRAWL_WEIGHTS": str(converted_weights), "PREFECT_HOME": str(tmp_path / "p")}
    result = dreamcrawl("stylize", "--preset", "fast", "--steps", "1", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dreamed: 1" in result.stdout.splitlines()
    with catalog.session() as session:
        rows = session.scalars(sa.select(Stylization)).all()
    assert [r.status for r in rows] == [StylizationStatus.DONE]
    assert rows[0].prefect_flow_run_id


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("stylize", "--layers", "mixed11"), "unknown layer 'mixed11'; valid layers: mixed0"),
        (("stylize", "--channel", "mixed4:9999"), "channel 9999 is out of range for mixed4"),
        (("stylize", "--preset", "dreamy"), "invalid choice: 'dreamy'"),
        (("stylize", "--octave-scale", "1"), "octave scale must be greater than 1"),
        (("run", "--keyword", "cat"), "give --start-url URL (a site) or --source NAME"),
    ],
)
def test_bad_dream_parameters_exit_2_before_any_work(
    settings: Settings, args: tuple[str, ...], fragment: str
) -> None:
    result = dreamcrawl(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert not Path(settings.home, "catalog.sqlite").exists()  # nothing was touched
