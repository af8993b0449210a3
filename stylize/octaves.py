"""One image's way through a dream: its octave sizes, its pixels, its own random rolls.

:class:`ImageDream` holds what ``Engine.dream_many`` keeps per image: the octave shapes,
the random generator (seeded with the config's seed, so an image dreamed alone or in a
batch draws the same rolls), the image on the device during an octave and on the host
between octaves, and the time it was charged.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PIL import Image

from stylize.config import DreamConfig
from stylize.errors import StylizeError
from stylize.image_io import to_array
from stylize.network import MIN_INPUT_SIZE
from stylize.tiling import TileLayout

ImageLike = Image.Image | np.ndarray


def octave_shapes(
    h: int, w: int, octaves: int, scale: float, clamp: bool = False
) -> list[tuple[int, int]]:
    """Image sizes from the smallest octave to the full size ``(h, w)``.

    Raises :class:`StylizeError` when the smallest would be under 75 px, unless ``clamp``,
    which drops the octaves that do not fit.
    """
    if min(h, w) < MIN_INPUT_SIZE:
        raise StylizeError(
            f"image is {w}×{h} px; InceptionV3 needs at least {MIN_INPUT_SIZE} px on each side"
        )
    fit = 1 + math.floor(math.log(min(h, w) / MIN_INPUT_SIZE) / math.log(scale) + 1e-9)
    if octaves > fit:
        if not clamp:
            raise StylizeError(
                f"{octaves} octaves at scale {scale:g} would shrink this {w}×{h} image below "
                f"{MIN_INPUT_SIZE} px; at most {fit} fit"
            )
        octaves = fit
    shapes = []
    for i in range(octaves - 1, -1, -1):
        factor = scale**-i
        shapes.append(
            (max(MIN_INPUT_SIZE, round(h * factor)), max(MIN_INPUT_SIZE, round(w * factor)))
        )
    return shapes


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an ``h × w × c`` float array (antialiased when shrinking)."""
    import tensorflow as tf

    if image.shape[:2] == tuple(shape):
        return image
    return tf.image.resize(image, shape, method="bilinear", antialias=True).numpy()


def pixels_of(image: ImageLike) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(rgb in [-1, 1], alpha, mode)`` of a PIL image or an ``h × w × 3`` array
    (uint8, or float in [0, 1])."""
    if isinstance(image, Image.Image):
        return to_array(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise StylizeError(f"an image array must be height × width × 3, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 127.5 - 1.0, None, "RGB"
    if not np.issubdtype(array.dtype, np.floating):
        raise StylizeError(f"an image array must be uint8 or float in [0, 1], got {array.dtype}")
    if array.size and not (np.isfinite(array).all() and 0.0 <= array.min() <= array.max() <= 1.0):
        raise StylizeError("a float image array must hold finite values in [0, 1]")
    return array.astype(np.float32) * 2.0 - 1.0, None, "RGB"


def finite(value: float, what: str) -> float:
    """``value``, or :class:`StylizeError` when it is NaN or infinite."""
    if not math.isfinite(value):
        raise StylizeError(
            f"the objective {what} is not a finite number ({value}); the dream was stopped "
            "and nothing was written (lower --step-size or the layer weights, or use fp32)"
        )
    return value


class ImageDream:
    """One image's state inside :meth:`Engine.dream_many`."""

    def __init__(self, image: ImageLike, config: DreamConfig, clamp: bool) -> None:
        self.rgb, self.alpha, self.mode = pixels_of(image)
        h, w = self.rgb.shape[:2]
        self.shapes = octave_shapes(h, w, config.octaves, config.octave_scale, clamp=clamp)
        self.rng = np.random.default_rng(config.seed)
        self.base = self.rgb
        if config.start == "noise":
            self.base = self.rng.uniform(-0.1, 0.1, size=self.rgb.shape).astype(np.float32)
        self.dreamed = resize(self.base, self.shapes[0])
        self.timings: list[float] = []
        self.before = self.after = math.nan

    def begin(self, octave: int, engine, config: DreamConfig) -> None:
        import tensorflow as tf

        started = time.perf_counter()
        shape = self.shapes[octave]
        if octave > 0:
            previous = resize(self.base, self.shapes[octave - 1])
            lost = resize(self.base, shape) - resize(previous, shape)
            self.dreamed = resize(self.dreamed, shape) + lost
        self.layout = TileLayout.for_image(*shape, config.tile)
        self.split, self.update = engine.layout_functions(self.layout, config.grad_norm)
        self.image = tf.convert_to_tensor(self.dreamed, tf.float32)
        self.pixels = self.layout.padded[0] * self.layout.padded[1]
        self.finite: list = []
        self.timings.append(time.perf_counter() - started)

    def shift(self, config: DreamConfig) -> np.ndarray:
        """This step's roll: jitter, plus a roll over the whole axis when it has tiles."""
        jitter = self.rng.integers(-config.jitter, config.jitter + 1, size=2)
        whole = self.rng.integers(0, self.dreamed.shape[:2])
        many = (len(self.layout.rows) > 1, len(self.layout.cols) > 1)
        return (jitter + np.where(many, whole, 0)).astype(np.int32)

    def end(self) -> None:
        import tensorflow as tf

        started = time.perf_counter()
        self.dreamed = self.image.numpy()
        if self.finite and not bool(tf.reduce_all(tf.stack(self.finite))):
            finite(math.nan, f"gradient at octave {len(self.timings)}")
        self.image = None
        self.timings[-1] += time.perf_counter() - started
