"""The DeepDream loop: octaves, random rolls, tiles, one traced gradient step.

``Engine.dream(image, config)`` is gradient *ascent on the pixels* of a frozen
InceptionV3:

- **octaves**: the image is shrunk ``octaves - 1`` times by ``octave_scale`` (never
  below 75 px), optimized at the smallest scale first, then enlarged; at each larger
  scale the detail lost by shrinking is added back (keras-io's scheme), so the result
  has the input's full resolution;
- **rolls**: each step rolls the image by a random offset (``jitter``; an axis split
  into tiles also rolls over a whole tile) so tile borders fall elsewhere every step and
  leave no seams;
- **tiles**: the rolled image is cut into equal tiles of at most ``tile`` px covering
  every pixel (a few reflected pixels pad the last row/column), the tiles are batched
  through the network together, and the gradient is normalized over the whole image;
- **one step**: :meth:`Engine._gradient_fn` is a ``tf.function`` with a shape-free input
  signature, traced once per objective and precision — never per image, octave or tile
  size — and the model is built once per process (:func:`load_engine`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stylize.config import DreamConfig
from stylize.errors import StylizeError
from stylize.image_io import from_array, to_array
from stylize.network import MIN_INPUT_SIZE, InceptionV3Features
from stylize.weights import LoadedWeights, WeightsInfo, load_weights, resolve_weights

log = logging.getLogger("dreamcrawl.stylize.engine")

# Progress callback: (octave index, octave count, step done, steps per octave).
Progress = Callable[[int, int, int, int], None]

# Four full tiles of the default 512 px (523 px as InceptionV3 sees them, see seen_size):
# a 1024 px octave's tiles go through the network in one call.
DEFAULT_MAX_BATCH_PIXELS = 4 * 523 * 523
_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass
class DreamResult:
    image: Image.Image
    objective_before: float
    objective_after: float
    octave_timings: list[float]
    device: str
    octave_shapes: list[tuple[int, int]] = field(default_factory=list)


def seen_size(n: int) -> int:
    """The smallest size ≥ ``n`` of which InceptionV3 uses every pixel.

    Its stem and reduction blocks are stride-2 'valid' convolutions and pools: a side of
    ``n`` px feeds every pixel to the network only when ``n ≡ 11 (mod 32)`` (299 is
    one); otherwise the last rows/columns get no gradient at all — a seam at every tile
    border. Tiles are therefore sized this way (the image is padded by reflection).
    """
    return n + (11 - n) % 32


def _tile_count(size: int, tile: int) -> int:
    """The fewest equal tiles along an axis of ``size`` px, each at most ``seen_size(tile)``."""
    count = max(1, size // seen_size(tile))
    while seen_size(math.ceil(size / count)) > seen_size(tile):
        count += 1
    return count


@dataclass(frozen=True)
class TileGrid:
    """``ny × nx`` equal tiles of ``th × tw`` px covering an ``h × w`` image.

    Tiles are sized by :func:`seen_size`, so a tile is at most ``seen_size(tile)`` px
    (523 for the default 512) and an axis is split only when it does not fit in that:
    a 522 px octave is one 523 px tile, not four tiles of 267 px — larger tiles keep
    the convolutions busier, and there are fewer tile borders.
    """

    h: int
    w: int
    ny: int
    nx: int
    th: int
    tw: int

    @classmethod
    def for_image(cls, h: int, w: int, tile: int) -> TileGrid:
        ny, nx = _tile_count(h, tile), _tile_count(w, tile)
        return cls(h, w, ny, nx, seen_size(math.ceil(h / ny)), seen_size(math.ceil(w / nx)))

    def split(self, image: np.ndarray) -> np.ndarray:
        """``(ny*nx, th, tw, c)`` tiles; the bottom/right edge is padded by reflection."""
        pad_y, pad_x = self.ny * self.th - self.h, self.nx * self.tw - self.w
        if pad_y or pad_x:
            image = np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="reflect")
        c = image.shape[2]
        tiles = image.reshape(self.ny, self.th, self.nx, self.tw, c).swapaxes(1, 2)
        return tiles.reshape(self.ny * self.nx, self.th, self.tw, c)

    def join(self, tiles: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`split`, cropped to ``h × w``."""
        c = tiles.shape[3]
        image = tiles.reshape(self.ny, self.nx, self.th, self.tw, c).swapaxes(1, 2)
        image = image.reshape(self.ny * self.th, self.nx * self.tw, c)
        return image[: self.h, : self.w]


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


class Engine:
    """A loaded InceptionV3 and the traced gradient steps of the objectives used so far."""

    def __init__(self, weights: LoadedWeights, max_batch_pixels: int = DEFAULT_MAX_BATCH_PIXELS):
        self.weights_info: WeightsInfo = weights.info
        self.max_batch_pixels = max_batch_pixels
        self._weights = weights
        self._networks: dict[str, InceptionV3Features] = {}
        self._functions: dict[tuple, tuple[Callable, Callable]] = {}
        self.device = _device_name()

    # -- the network and the traced step ------------------------------------------------

    def network(self, precision: str = "fp32") -> InceptionV3Features:
        if precision not in self._networks:
            self._networks[precision] = InceptionV3Features(
                self._weights.convs,
                last_block_pool=self.weights_info.last_block_pool,
                classifier=self._weights.classifier,
                dtype=_DTYPES[precision],
            )
        return self._networks[precision]

    def _objective_key(self, config: DreamConfig) -> tuple:
        return (
            config.objective_layers,
            config.channel,
            config.class_index,
            config.reduction,
            config.precision,
        )

    def _functions_for(self, config: DreamConfig) -> tuple[Callable, Callable]:
        """``(gradient, evaluate)`` tf.functions of this objective, traced once each."""
        import tensorflow as tf

        key = self._objective_key(config)
        if key in self._functions:
            return self._functions[key]
        net = self.network(config.precision)
        deepest = config.deepest
        layers, channel = config.objective_layers, config.channel
        class_index, reduction = config.class_index, config.reduction

        def per_tile_objective(x):
            outputs = net(x, deepest)
            if class_index is not None:
                return outputs["logits"][:, class_index]
            total = 0.0
            for name, weight in layers:
                act = tf.cast(outputs[name], tf.float32)
                if channel is not None:
                    act = act[..., channel]
                if reduction == "mean_square":
                    act = tf.square(act)
                total += weight * tf.reduce_mean(act, axis=list(range(1, act.shape.rank)))
            return total

        spec = [tf.TensorSpec([None, None, None, 3], tf.float32)]

        @tf.function(input_signature=spec)
        def gradient(tiles):
            with tf.GradientTape() as tape:
                tape.watch(tiles)
                values = per_tile_objective(tiles)
                total = tf.reduce_sum(values)
            return values, tape.gradient(total, tiles)

        @tf.function(input_signature=spec)
        def evaluate(tiles):
            return per_tile_objective(tiles)

        self._functions[key] = (gradient, evaluate)
        return gradient, evaluate

    def trace_count(self) -> int:
        """How many times the step functions were traced (for benchmarks and tests)."""
        return sum(
            f.experimental_get_tracing_count() for pair in self._functions.values() for f in pair
        )

    # -- tiled passes -------------------------------------------------------------------

    def _batches(self, grid: TileGrid):
        per_batch = max(1, self.max_batch_pixels // (grid.th * grid.tw))
        count = grid.ny * grid.nx
        for start in range(0, count, per_batch):
            yield slice(start, min(count, start + per_batch))

    def tiled_gradient(self, image: np.ndarray, config: DreamConfig) -> np.ndarray:
        """The objective's gradient for every pixel of ``image``, tile by tile."""
        gradient, _ = self._functions_for(config)
        grid = TileGrid.for_image(image.shape[0], image.shape[1], config.tile)
        tiles = grid.split(image)
        grads = np.empty_like(tiles)
        for batch in self._batches(grid):
            _, grads[batch] = gradient(tiles[batch])
        return grid.join(grads)

    def objective(self, image: np.ndarray, config: DreamConfig) -> float:
        """The objective of a whole image (mean over its tiles, no roll)."""
        _, evaluate = self._functions_for(config)
        grid = TileGrid.for_image(image.shape[0], image.shape[1], config.tile)
        tiles = grid.split(image)
        values = [evaluate(tiles[batch]).numpy() for batch in self._batches(grid)]
        return float(np.mean(np.concatenate(values)))

    # -- the dream ----------------------------------------------------------------------

    def step(self, image: np.ndarray, config: DreamConfig, rng: np.random.Generator) -> np.ndarray:
        """One gradient-ascent step on a randomly rolled copy of ``image``."""
        h, w = image.shape[:2]
        grid = TileGrid.for_image(h, w, config.tile)
        jitter = rng.integers(-config.jitter, config.jitter + 1, size=2)
        tile_roll = rng.integers(0, (grid.th, grid.tw))
        shift_y = int(jitter[0] + (tile_roll[0] if grid.ny > 1 else 0))
        shift_x = int(jitter[1] + (tile_roll[1] if grid.nx > 1 else 0))
        rolled = np.roll(image, (shift_y, shift_x), axis=(0, 1))
        grad = np.roll(self.tiled_gradient(rolled, config), (-shift_y, -shift_x), axis=(0, 1))
        if config.grad_norm == "std":
            grad /= grad.std() + 1e-8
        else:
            grad /= max(float(np.abs(grad).mean()), 1e-8)
        return np.clip(image + config.step_size * grad, -1.0, 1.0)

    def dream(
        self,
        image: Image.Image,
        config: DreamConfig,
        progress: Progress | None = None,
        clamp_octaves: bool = True,
    ) -> DreamResult:
        """Dream ``image`` with ``config``; the result has the input's size, mode and alpha.

        With ``clamp_octaves`` (the default, for presets applied to any image) octaves that
        would shrink the image below 75 px are dropped; without it they are an error.
        """
        config.validate()
        if config.class_index is not None and not self.weights_info.has_classifier:
            raise StylizeError(
                "the class-score objective needs weights with a classifier (Keras' ImageNet "
                "file with top); the loaded weights "
                f"({self.weights_info.source}: {self.weights_info.path.name}) have none"
            )
        rgb, alpha, mode = to_array(image)
        h, w = rgb.shape[:2]
        shapes = octave_shapes(h, w, config.octaves, config.octave_scale, clamp=clamp_octaves)
        rng = np.random.default_rng(config.seed)
        base = rgb
        if config.start == "noise":
            base = rng.uniform(-0.1, 0.1, size=rgb.shape).astype(np.float32)
        before = self.objective(base, config)
        dreamed = resize(base, shapes[0])
        timings = []
        for index, shape in enumerate(shapes):
            started = time.perf_counter()
            if index > 0:
                lost = resize(base, shape) - resize(resize(base, shapes[index - 1]), shape)
                dreamed = resize(dreamed, shape) + lost
            for done in range(config.steps):
                dreamed = self.step(dreamed, config, rng)
                if progress is not None:
                    progress(index, len(shapes), done + 1, config.steps)
            timings.append(time.perf_counter() - started)
        after = self.objective(dreamed, config)
        return DreamResult(
            image=from_array(dreamed, alpha, mode),
            objective_before=before,
            objective_after=after,
            octave_timings=timings,
            device=self.device,
            octave_shapes=shapes,
        )


def _device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    name = f"GPU:{gpus[0].name}" if gpus else "CPU"
    log.info("dreams run on %s", _describe_device(tf, name))
    return name


def _describe_device(tf: Any, name: str) -> str:
    """One line for the log: which device, and why not a GPU (TF's own lines may be quiet)."""
    physical = tf.config.list_physical_devices("GPU")
    if name == "CPU":
        built = "with" if tf.test.is_built_with_cuda() else "without"
        return f"the CPU: TensorFlow (built {built} CUDA) sees no GPU"
    details = tf.config.experimental.get_device_details(physical[0]) if physical else {}
    return f"{name} ({details.get('device_name', 'GPU')}; {len(physical)} GPU(s) visible)"


_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def load_engine(weights_path: str | None = None, weights_dir: Path | None = None) -> Engine:
    """The process-wide engine for these weights (built once, then reused).

    ``weights_path`` is an explicit file; ``weights_dir`` the folder of converted weights
    (see :func:`stylize.weights.find_weights` for the lookup order).
    """
    source, path = resolve_weights(weights_path, weights_dir)
    key = str(path.resolve())
    with _LOCK:
        if key not in _ENGINES:
            started = time.perf_counter()
            _ENGINES[key] = Engine(load_weights(source, path))
            log.info("loaded %s from %s in %.1f s", source, path, time.perf_counter() - started)
        return _ENGINES[key]
