"""The DeepDream baseline of bench_dream.py: the TF tutorial's recipe, every tile covered.

Keras' InceptionV3 with its batch-norm layers, a plain ``@tf.function`` computing one
tile's gradient, a Python loop over tiles of 512 (the last one shifted back inside the
image, where the tutorial would skip it), random rolls; the same octaves, steps, step
size and objective as the engine's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


class TutorialBaseline:
    """The TF tutorial's recipe, with every tile covered; same parameters as ours."""

    def __init__(self, weights_path: Path, config) -> None:
        import keras
        import tensorflow as tf

        started = time.perf_counter()
        base = keras.applications.InceptionV3(weights=None, include_top=False)
        base.load_weights(weights_path)
        names = [name for name, _ in config.layers]
        model = keras.Model(base.input, [base.get_layer(n).output for n in names])
        weights = [w for _, w in config.layers]
        square = config.reduction == "mean_square"

        @tf.function
        def tile_gradient(tile):
            with tf.GradientTape() as tape:
                tape.watch(tile)
                outputs = model(tile[None], training=False)
                outputs = outputs if isinstance(outputs, list) else [outputs]
                loss = 0.0
                for weight, act in zip(weights, outputs, strict=True):
                    loss += weight * tf.reduce_mean(tf.square(act) if square else act)
            return tape.gradient(loss, tile)

        self.tile_gradient = tile_gradient
        self.config = config
        self.build_seconds = time.perf_counter() - started

    def traces(self) -> int:
        return self.tile_gradient.experimental_get_tracing_count()

    @staticmethod
    def starts(size: int, tile: int) -> list[int]:
        if size <= tile:
            return [0]
        return [*range(0, size - tile, tile), size - tile]

    def step(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import tensorflow as tf

        tile, (h, w) = self.config.tile, image.shape[:2]
        shift = [int(v) for v in rng.integers(-tile, tile, size=2)]
        rolled = tf.roll(tf.constant(image), shift, axis=[0, 1])
        grads = np.zeros_like(image)
        for y in self.starts(h, tile):
            for x in self.starts(w, tile):
                patch = rolled[y : y + tile, x : x + tile]
                grads[y : y + tile, x : x + tile] = self.tile_gradient(patch).numpy()
        grads = np.roll(grads, [-s for s in shift], axis=(0, 1))
        grads /= max(float(np.abs(grads).mean()), 1e-8)
        return np.clip(image + self.config.step_size * grads, -1, 1)

    def warm(self, image) -> None:
        """Trace the tile function for every tile shape a dream of ``image`` uses."""
        import tensorflow as tf

        from stylize.engine import octave_shapes

        cfg = self.config
        for h, w in octave_shapes(image.height, image.width, cfg.octaves, cfg.octave_scale, True):
            self.tile_gradient(tf.zeros((min(h, cfg.tile), min(w, cfg.tile), 3)))

    def dream(self, image) -> np.ndarray:
        from stylize.engine import octave_shapes, resize
        from stylize.image_io import to_array

        cfg = self.config
        base = to_array(image)[0]
        shapes = octave_shapes(*base.shape[:2], cfg.octaves, cfg.octave_scale, clamp=True)
        rng = np.random.default_rng(cfg.seed)
        dreamed = resize(base, shapes[0])
        for index, shape in enumerate(shapes):
            if index:
                lost = resize(base, shape) - resize(resize(base, shapes[index - 1]), shape)
                dreamed = resize(dreamed, shape) + lost
            for _ in range(cfg.steps):
                dreamed = self.step(dreamed, rng)
        return dreamed
