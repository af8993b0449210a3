"""`dreamcrawl stylize` and `dreamcrawl run` through the real command line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image as PILImage

from storage.db import open_catalog
from storage.models import Stylization, StylizationStatus
from storage.settings import Settings
from tests.helpers import add_image, dreamcrawl, photo_bytes


def test_stylize_command_dreams_the_catalog(
    blob_backend: Settings,
    converted_weights: Path,
    tmp_path: Path,
) -> None:
    """On the local folder and on S3: the dream, its export and its gallery."""
    catalog = open_catalog(blob_backend)
    add_image(catalog, photo_bytes("rocket", size=128))
    env = {"DREAMCRAWL_WEIGHTS": str(converted_weights), "PREFECT_HOME": str(tmp_path / "p")}
    result = dreamcrawl("stylize", "--preset", "fast", "--steps", "1", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dreamed: 1" in result.stdout.splitlines()
    with catalog.session() as session:
        rows = session.scalars(sa.select(Stylization)).all()
    assert [r.status for r in rows] == [StylizationStatus.DONE]
    assert rows[0].prefect_flow_run_id
    key = rows[0].output_blob_key
    assert key is not None
    with catalog.blobs.open(key) as fh, PILImage.open(fh) as out:
        assert out.size[0] > 0

    exported = dreamcrawl("catalog", "export", str(tmp_path / "out.csv"))
    assert exported.returncode == 0, exported.stderr
    with open(tmp_path / "out.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["output_sha256"] == key
    # The path column names the object: under DREAMCRAWL_HOME, or in the bucket.
    assert catalog.blobs.url(key).endswith(row["output_path"])

    gallery = dreamcrawl("catalog", "gallery", str(tmp_path / "gallery"))
    assert gallery.returncode == 0, gallery.stderr
    copies = list((tmp_path / "gallery" / "full").iterdir())
    assert {p.read_bytes() for p in copies} >= {catalog.blobs.read_bytes(key)}


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
