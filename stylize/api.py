"""One call for a notebook user: ``stylize.dream(image, preset="classic", **overrides)``.

It takes what a notebook has at hand (a file path, a PIL image or a NumPy array),
builds the same :class:`~stylize.params.DreamParams` the CLI and the flows build, and
dreams with the process-wide engine (weights found as ``dreamcrawl weights info`` says).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from stylize.engine import DreamResult, load_engine
from stylize.errors import StylizeError
from stylize.image_io import read_image
from stylize.params import DreamParams


def as_image(image: str | os.PathLike | Image.Image | np.ndarray) -> Image.Image:
    """A PIL image from a path, a PIL image, or an HxW / HxWx3 / HxWx4 array.

    Arrays of integers are read as 0..255; arrays of floats as 0..1.
    """
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, str | os.PathLike):
        return read_image(image)
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise StylizeError(f"an image array must be HxW, HxWx3 or HxWx4, got {array.shape}")
        if np.issubdtype(array.dtype, np.floating):
            if not np.isfinite(array).all():
                raise StylizeError("an image array must hold finite numbers")
            array = np.clip(array, 0.0, 1.0) * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        return Image.fromarray(array)
    raise StylizeError(f"cannot dream a {type(image).__name__}: give a path, PIL image or array")


def dream(
    image: str | os.PathLike | Image.Image | np.ndarray,
    preset: str = "classic",
    *,
    weights: str | os.PathLike | None = None,
    **overrides: Any,
) -> DreamResult:
    """Dream ``image`` with ``preset``; keyword overrides as in ``dreamcrawl dream``.

    ``layers="mixed4=1.0,mixed5=1.5"`` and ``channel="mixed4:97"`` take the CLI's text
    as well as the model's form; the result's ``.image`` is a PIL image of the input's
    size (``max_pixels``/``fit`` as on the CLI: above the budget it is refused, or
    downscaled with ``fit=True``). Bad values raise :class:`~stylize.errors.StylizeError`
    with one line.
    """
    params = DreamParams.parse(presets=[preset], **overrides)
    config = params.config()
    picture = config.fit_image(as_image(image), "the image")  # the one pixel budget
    engine = load_engine(str(weights) if weights else None, None)
    return engine.dream(picture, config)


__all__ = ["as_image", "dream"]
