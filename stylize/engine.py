"""The DeepDream loop: octaves, random rolls, tiles, steps on the device, many images at once.

``Engine.dream(image, config)`` is gradient *ascent on the pixels* of a frozen
InceptionV3; ``Engine.dream_many(images, config)`` does the same for several images
together, and ``dream`` is ``dream_many`` of one image:

- **octaves**: each image is shrunk ``octaves - 1`` times by ``octave_scale`` (never
  below 75 px), optimized at the smallest scale first, then enlarged; at each larger
  scale the detail lost by shrinking is added back (keras-io's scheme), so the result
  has the input's full resolution. Images advance together, octave by octave;
- **tiles** (:mod:`stylize.tiling`): every octave is cut into tiles of at most nine
  shapes (sides 523, 267, 139 px for the default tile), the fewest padded pixels;
- **one step** (:mod:`stylize.step`): each image is rolled by a random offset and split
  into tiles on the device; the tiles of *all* images go through the network together,
  grouped by shape, as many per call as the memory budget allows
  (:mod:`stylize.batching`); each image's gradient is joined, rolled back, normalized
  and added, still on the device. An image comes back to the host only at the end of
  an octave. The gradient is traced once per objective and precision, never per image.

An image's random rolls come from its own generator seeded with ``config.seed``, so a
dream of an image alone and within a batch computes the same steps: they differ only by
floating-point rounding of the batched convolutions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stylize.batching import BatchRunner, device_budget_pixels
from stylize.config import DreamConfig
from stylize.errors import StylizeError
from stylize.image_io import from_array
from stylize.network import InceptionV3Features
from stylize.octaves import ImageDream, ImageLike, finite, octave_shapes, pixels_of, resize
from stylize.step import make_evaluate, make_gradient, make_split, make_update, tile_objective
from stylize.tiling import TileLayout, seen_size, tile_sizes
from stylize.weights import LoadedWeights, WeightsInfo, load_weights, resolve_weights

__all__ = ["DreamResult", "Engine", "TileLayout", "load_engine", "octave_shapes", "pixels_of"]
__all__ += ["resize", "seen_size", "tile_sizes"]

log = logging.getLogger("dreamcrawl.stylize.engine")

# Progress callback: (octave index, octave count, step done, steps per octave).
Progress = Callable[[int, int, int, int], None]

# Network dtype of each precision; tf32 is float32 with TensorFloat-32 matmuls on a GPU.
_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass
class DreamResult:
    image: Image.Image
    objective_before: float
    objective_after: float
    octave_timings: list[float]
    device: str
    octave_shapes: list[tuple[int, int]] = field(default_factory=list)


class Engine:
    """A loaded InceptionV3 and the traced step functions of the objectives used so far."""

    def __init__(self, weights: LoadedWeights, max_batch_pixels: int | None = None):
        self.weights_info: WeightsInfo = weights.info
        # Pixels per network call; None: chosen from the device (stylize.batching).
        self.max_batch_pixels = max_batch_pixels
        self._weights = weights
        self._networks: dict[str, InceptionV3Features] = {}
        self._functions: dict[tuple, tuple[Callable, Callable]] = {}
        self._layouts: dict[tuple, tuple[Callable, Callable]] = {}
        self.device = _device_name()
        self.last_runner: BatchRunner | None = None  # the last dream's (tiles per call)

    # -- the network, its traced functions, the device -----------------------------------

    def network(self, precision: str = "fp32") -> InceptionV3Features:
        dtype = _DTYPES[precision]
        if dtype not in self._networks:
            self._networks[dtype] = InceptionV3Features(
                self._weights.convs,
                last_block_pool=self.weights_info.last_block_pool,
                classifier=self._weights.classifier,
                dtype=dtype,
            )
        return self._networks[dtype]

    def functions(self, config: DreamConfig) -> tuple[Callable, Callable]:
        """``(gradient, evaluate)`` of this objective (:mod:`stylize.step`), traced once."""
        key = (
            config.objective_layers,
            config.channel,
            config.class_index,
            config.reduction,
            _DTYPES[config.precision],
        )
        if key not in self._functions:
            objective = tile_objective(self.network(config.precision), config)
            self._functions[key] = (make_gradient(objective), make_evaluate(objective))
        return self._functions[key]

    def layout_functions(self, layout: TileLayout, grad_norm: str) -> tuple[Callable, Callable]:
        """``(split, update)`` for images with this tile layout (traced once each)."""
        key = (layout, grad_norm)
        if key not in self._layouts:
            self._layouts[key] = (make_split(layout), make_update(layout, grad_norm))
        return self._layouts[key]

    def trace_count(self) -> int:
        """Traces of the network functions (gradient, evaluate): one each per objective."""
        return sum(f.experimental_get_tracing_count() for p in self._functions.values() for f in p)

    def layout_trace_count(self) -> int:
        """Traces of the split/update functions: one each per tile layout (no network)."""
        return sum(f.experimental_get_tracing_count() for p in self._layouts.values() for f in p)

    def use_precision(self, config: DreamConfig) -> None:
        """Refuse a precision this device cannot do; set TF32 matmuls on a GPU."""
        import tensorflow as tf

        gpu = self.device.startswith("GPU")
        if config.precision == "fp16" and not gpu:
            raise StylizeError(
                "precision fp16 needs a GPU (this device is CPU); use fp32 or bf16 here"
            )
        if gpu:
            tf.config.experimental.enable_tensor_float_32_execution(config.precision == "tf32")
        elif config.precision == "tf32":
            log.info("precision tf32 is a GPU mode; on the CPU it computes in fp32")

    def runner(self, config: DreamConfig) -> BatchRunner:
        """A batch runner at this engine's budget; a budget halved on running out of
        memory stays halved for the engine's later calls."""
        if self.max_batch_pixels is None:
            gpu = self.device.startswith("GPU")
            per_pixel = self._bytes_per_pixel(config) if gpu else 0.0
            self.max_batch_pixels = device_budget_pixels(gpu, per_pixel)
        return BatchRunner(self.max_batch_pixels, lambda b: setattr(self, "max_batch_pixels", b))

    def _bytes_per_pixel(self, config: DreamConfig) -> float:
        """Device bytes a gradient call needs per input pixel: every activation up to the
        objective's layer, kept for the backward pass, plus as much again for gradients."""
        import tensorflow as tf

        net, side = self.network(config.precision), 299
        spec = tf.TensorSpec([1, side, side, 3], tf.float32)
        graph = tf.function(lambda x: net(x, config.deepest)).get_concrete_function(spec).graph
        elements = sum(
            out.shape.num_elements() or 0
            for op in graph.get_operations()
            if op.type not in ("Const", "Placeholder", "Identity")
            for out in op.outputs
        )
        return 2.0 * elements * net.dtype.size / side**2

    # -- whole-image passes (scoring, tests) ---------------------------------------------

    def objectives(self, images: Sequence[np.ndarray], config: DreamConfig) -> list[float]:
        """Each image's objective (area-weighted mean over its tiles, no roll), batched."""
        import tensorflow as tf

        _, evaluate = self.functions(config)
        pieces, owners = [], []
        for index, image in enumerate(images):
            layout = TileLayout.for_image(image.shape[0], image.shape[1], config.tile)
            split, _ = self.layout_functions(layout, config.grad_norm)
            tiles = split(tf.convert_to_tensor(image, tf.float32), tf.zeros(2, tf.int32))
            for shape, group in zip(layout.shapes, tiles, strict=True):
                pieces.append((shape, group))
                owners.append(index)
        values = self.runner(config).run(evaluate, pieces)
        totals, areas = np.zeros(len(images)), np.zeros(len(images))
        for owner, (shape, _), value in zip(owners, pieces, values, strict=True):
            totals[owner] += float(tf.reduce_sum(value)) * shape[0] * shape[1]
            areas[owner] += int(value.shape[0]) * shape[0] * shape[1]
        return list(totals / areas)

    def objective(self, image: np.ndarray, config: DreamConfig) -> float:
        return self.objectives([image], config)[0]

    def tiled_gradient(self, image: np.ndarray, config: DreamConfig) -> np.ndarray:
        """The objective's gradient for every pixel of ``image`` (no roll, not normalized)."""
        import tensorflow as tf

        gradient, _ = self.functions(config)
        layout = TileLayout.for_image(image.shape[0], image.shape[1], config.tile)
        split, _ = self.layout_functions(layout, config.grad_norm)
        tiles = split(tf.convert_to_tensor(image, tf.float32), tf.zeros(2, tf.int32))
        grads = self.runner(config).run(gradient, list(zip(layout.shapes, tiles, strict=True)))
        return layout.join(grads, image.shape[0], image.shape[1]).numpy()

    # -- the dream -----------------------------------------------------------------------

    def dream(
        self,
        image: ImageLike,
        config: DreamConfig,
        progress: Progress | None = None,
        clamp_octaves: bool = True,
    ) -> DreamResult:
        """Dream ``image`` (a PIL image, or an ``h × w × 3`` array: uint8, or float in
        [0, 1]) with ``config``; the result has the input's size, mode and alpha.

        With ``clamp_octaves`` (the default, for presets applied to any image) octaves that
        would shrink the image below 75 px are dropped; without it they are an error.
        """
        return self.dream_many([image], config, progress, clamp_octaves)[0]

    def dream_many(
        self,
        images: Sequence[ImageLike],
        config: DreamConfig,
        progress: Progress | None = None,
        clamp_octaves: bool = True,
    ) -> list[DreamResult]:
        """Dream several images together; each result equals ``dream`` of that image alone
        (to float rounding). Their tiles share network calls, octave by octave."""
        import tensorflow as tf

        config.validate()
        self.use_precision(config)
        if config.class_index is not None and not self.weights_info.has_classifier:
            raise StylizeError(
                "the class-score objective needs weights with a classifier (Keras' ImageNet "
                "file with top); the loaded weights "
                f"({self.weights_info.source}: {self.weights_info.path.name}) have none"
            )
        states = [ImageDream(image, config, clamp_octaves) for image in images]
        befores = self.objectives([s.base for s in states], config)
        for state, before in zip(states, befores, strict=True):
            state.before = finite(before, "before the dream")
        gradient, _ = self.functions(config)
        runner = self.runner(config)
        step_size = tf.constant(config.step_size, tf.float32)
        octaves = max(len(s.shapes) for s in states)
        for octave in range(octaves):
            active = [s for s in states if octave < len(s.shapes)]
            for state in active:
                state.begin(octave, self, config)
            for done in range(config.steps):
                self._step_all(active, config, gradient, runner, step_size)
                if progress is not None:
                    progress(octave, octaves, done + 1, config.steps)
            for state in active:
                state.end()
        afters = self.objectives([s.dreamed for s in states], config)
        self.last_runner = runner
        return [
            DreamResult(
                image=from_array(s.dreamed, s.alpha, s.mode),
                objective_before=s.before,
                objective_after=finite(after, "after the dream"),
                octave_timings=s.timings,
                device=self.device,
                octave_shapes=s.shapes,
            )
            for s, after in zip(states, afters, strict=True)
        ]

    def _step_all(self, states: list[ImageDream], config, gradient, runner, step_size) -> None:
        """One step of every image: split each, one batched gradient, update each."""
        started = time.perf_counter()
        shifts = [s.shift(config) for s in states]
        pieces, owners = [], []
        for state, shift in zip(states, shifts, strict=True):
            tiles = state.split(state.image, shift)
            for shape, group in zip(state.layout.shapes, tiles, strict=True):
                pieces.append((shape, group))
                owners.append(state)
        grads = runner.run(gradient, pieces)
        for state, shift in zip(states, shifts, strict=True):
            mine = tuple(g for g, owner in zip(grads, owners, strict=True) if owner is state)
            state.image, finite = state.update(state.image, shift, mine, step_size)
            state.finite.append(finite)
        # Each image is charged its share of the step by the pixels it sent.
        elapsed, total = time.perf_counter() - started, sum(s.pixels for s in states)
        for state in states:
            state.timings[-1] += elapsed * state.pixels / total


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
