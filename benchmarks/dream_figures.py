"""FLOP counting and timing helpers of the DeepDream benchmark (bench_dream.py).

FLOPs are those of the Conv2D and Conv2DBackpropInput ops of each executed call (weight
gradients are pruned), read from the traced graph; the peak they are compared with is a
4096² float32 matmul timed in the same process.
"""

from __future__ import annotations

import time

# Side of the peak's matmul: 4096 for the figures; --small runs use 1024 (CI speed).
PEAK_SIDE = {"n": 4096}


def matmul_peak() -> float:
    """FLOP/s of a 4096² float32 matmul (best of several timed runs)."""
    import tensorflow as tf

    n = PEAK_SIDE["n"]
    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def conv_flops(function, batch: int, th: int, tw: int) -> float:
    """FLOPs of the Conv2D and Conv2DBackpropInput ops of one call of a step function."""
    import tensorflow as tf

    spec = tf.TensorSpec([batch, th, tw, 3], tf.float32)
    graph = tf.function(function.python_function).get_concrete_function(spec).graph
    total = 0.0
    for op in graph.get_operations():
        if op.type == "Conv2D":
            out = op.outputs[0].shape
            kh, kw, cin, _ = op.inputs[1].shape
            total += 2.0 * out.num_elements() * kh * kw * cin
        elif op.type == "Conv2DBackpropInput":
            grad_out = op.inputs[2].shape
            kh, kw, cin, _ = op.inputs[1].shape
            total += 2.0 * grad_out.num_elements() * kh * kw * cin
    return total


def tiled_flops(function, config, shape: tuple[int, int], cache: dict) -> float:
    """FLOPs of one tiled pass of ``function`` over an image of ``shape`` (conv FLOPs grow
    linearly with the batch, so each tile counts as a batch of one)."""
    from stylize.engine import TileLayout

    total = 0.0
    for _, _, th, tw in TileLayout.for_image(*shape, config.tile).tiles:
        key = (function, th, tw)
        if key not in cache:
            cache[key] = conv_flops(function, 1, th, tw)
        total += cache[key]
    return total


def dream_flops(engine, config, image, cache: dict | None = None) -> tuple[float, float]:
    """FLOPs our engine executes for one dream of ``image``: its gradient steps, and the
    whole dream (the steps plus the two forward passes that score it before and after)."""
    from stylize.engine import octave_shapes

    cache = {} if cache is None else cache
    gradient, evaluate = engine.functions(config)
    shapes = octave_shapes(image.height, image.width, config.octaves, config.octave_scale, True)
    steps = sum(tiled_flops(gradient, config, s, cache) for s in shapes) * config.steps
    scoring = 2 * tiled_flops(evaluate, config, (image.height, image.width), cache)
    return steps, steps + scoring


class StepTimer:
    """Wall time spent in the engine's steps (roll, tiles, gradient, normalization, update)."""

    def __init__(self, engine) -> None:
        self.seconds = 0.0
        self._step = engine._step_all
        engine._step_all = self

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._step(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
