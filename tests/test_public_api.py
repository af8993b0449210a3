"""The one-call Python API of each stage, used as a notebook user would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

import crawler
import storage
import stylize
from storage.settings import Settings
from tests.helpers import photo_bytes
from tests.site_fixture import LocalSite, serve


@pytest.fixture
def weights_env(converted_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DREAMCRAWL_WEIGHTS", str(converted_weights))


@pytest.mark.parametrize("kind", ["array-uint8", "array-float", "path", "pil"])
def test_stylize_dream_takes_what_a_notebook_has(
    kind: str, weights_env: None, tmp_path: Path
) -> None:
    from PIL import Image

    array = np.asarray(Image.fromarray(skdata.chelsea()).resize((120, 80)))
    image = {
        "array-uint8": array,
        "array-float": array.astype(np.float32) / 255.0,
        "pil": Image.fromarray(array),
    }.get(kind)
    if kind == "path":
        image = tmp_path / "cat.png"
        Image.fromarray(array).save(image)
    result = stylize.dream(image, preset="fast", steps=2, layers="mixed3=1,mixed4=0.5")
    assert result.image.size == (120, 80)
    assert result.objective_after > result.objective_before
    changed = np.abs(np.asarray(result.image, np.float32) - array).mean()
    assert changed > 1.0  # the dream changed the picture


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"steps": -1}, "steps must be greater than or equal to 0"),
        ({"layers": "mixed99"}, "unknown layer 'mixed99'"),
        ({"step_size": float("inf")}, "step size must be a finite number"),
        ({"wobble": 3}, "wobble"),
    ],
)
def test_stylize_dream_refuses_bad_values_in_one_line(overrides: dict, fragment: str) -> None:
    with pytest.raises(stylize.StylizeError, match=fragment) as caught:
        stylize.dream(np.zeros((80, 80, 3), np.uint8), preset="fast", **overrides)
    assert "\n" not in str(caught.value)


def test_stylize_dream_refuses_what_is_not_an_image() -> None:
    with pytest.raises(stylize.StylizeError, match="HxW"):
        stylize.dream(np.zeros((4, 4, 7)), preset="fast")


def test_crawl_then_open_the_catalog_as_pandas(settings: Settings) -> None:
    site = LocalSite()
    with serve(site):
        site.file("/cat.jpg", photo_bytes("chelsea", size=160), "image/jpeg")
        site.page("/", '<html><title>cats</title><img src="/cat.jpg" alt="a cat"></html>')
        result = crawler.crawl(["cat"], start_urls=[site.url("/")], allow_private=True)
    assert result.status == "finished" and result.counts["new_images"] == 1
    catalog = storage.open_catalog()
    frame = storage.to_pandas("v_images", catalog)
    assert list(frame["keywords"].astype(str)) and len(frame) == 1
    assert int(frame["width"].iloc[0]) == 160
    with pytest.raises(storage.UserError, match="unknown view 'v_nope'; views: "):
        storage.to_pandas("v_nope", catalog)


def test_stylize_dream_keeps_the_pixel_budget(weights_env: None) -> None:
    array = np.zeros((200, 300, 3), np.uint8) + 128
    with pytest.raises(stylize.StylizeError, match="above the dream budget of 20000 pixels"):
        stylize.dream(array, preset="fast", max_pixels=20000)
    fitted = stylize.dream(array, preset="fast", steps=1, max_pixels=20000, fit=True)
    width, height = fitted.image.size
    assert width * height <= 20000 and abs(width / height - 1.5) < 0.05
