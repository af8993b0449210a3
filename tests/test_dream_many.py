"""Many images dreamed together (``Engine.dream_many``), steps on the device, precision,
and the guards against numbers that are not finite — on real weights and real photos."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage
from skimage.metrics import structural_similarity

from stylize.batching import BatchRunner
from stylize.config import DreamConfig, get_preset
from stylize.engine import TileLayout
from stylize.errors import StylizeError
from stylize.image_io import to_array
from stylize.step import make_update
from tests.weights_fixture import photo

CLASSIC = get_preset("classic")


def _pixels(result) -> np.ndarray:
    return np.asarray(result.image).astype(np.float64)


def _photos() -> list:
    """Real photos of different sizes and aspect ratios; coffee's and rocket's tiles have
    one shape (267 × 395), the others' their own."""
    return [
        photo("chelsea", 300),
        photo("coffee", 330),
        photo("astronaut", 333),
        photo("rocket", 390),
    ]


def test_one_step_together_equals_one_step_alone(engine) -> None:
    """One step: the only difference a shared batch makes is float rounding (≤ 1 level)."""
    config = dataclasses.replace(CLASSIC, octaves=1, steps=1)
    images = _photos()
    together = engine.dream_many(images, config)
    shared = engine.last_runner
    alone = [engine.dream(image, config) for image in images]
    for many, one, image in zip(together, alone, images, strict=True):
        assert many.image.size == image.size
        assert np.abs(_pixels(many) - _pixels(one)).max() <= 1
        assert many.objective_after == pytest.approx(one.objective_after, rel=1e-4)
        assert many.objective_before == pytest.approx(one.objective_before, rel=1e-5)
    # Their tiles did share calls: fewer calls than tiles.
    assert shared.calls < shared.tiles


def test_whole_dreams_together_match_dreams_alone(engine) -> None:
    """Whole classic dreams (3 steps per octave here). DeepDream amplifies rounding: a
    1e-6 change of the input moves single pixels by tens of levels after a few steps
    (docs/engine.md), so the dreams are compared as a whole: objective within 2 %, the
    blurred change nearly identical, and most pixels within 2 levels."""
    config = dataclasses.replace(CLASSIC, steps=3)
    images = _photos()
    together = engine.dream_many(images, config)
    for many, image in zip(together, images, strict=True):
        one = engine.dream(image, config)
        assert many.octave_shapes == one.octave_shapes
        assert many.objective_after == pytest.approx(one.objective_after, rel=0.02)
        original = to_array(image)[0]
        d_many = to_array(many.image)[0] - original
        d_one = to_array(one.image)[0] - original
        blur = (3, 3, 0)
        corr = np.corrcoef(
            ndimage.gaussian_filter(d_many, blur).ravel(),
            ndimage.gaussian_filter(d_one, blur).ravel(),
        )[0, 1]
        assert corr > 0.9
        assert np.median(np.abs(_pixels(many) - _pixels(one))) <= 2


def test_same_batch_same_pixels_and_no_retracing(engine) -> None:
    config = dataclasses.replace(CLASSIC, steps=2)
    first = engine.dream_many(_photos(), config)
    network, layouts = engine.trace_count(), engine.layout_trace_count()
    again = engine.dream_many(_photos(), config)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert (engine.trace_count(), engine.layout_trace_count()) == (network, layouts)
    # Other images, other sizes: the network function is never traced again; split and
    # update only for a tile layout not seen before (none here: same layouts).
    engine.dream_many([photo("rocket", 301), photo("chelsea", 299)], config)
    assert engine.trace_count() == network


def test_dream_accepts_numpy_arrays(engine) -> None:
    config = dataclasses.replace(get_preset("fast"), steps=1)
    image = photo("coffee", 160)
    as_uint8 = np.asarray(image)
    from_pil = engine.dream(image, config)
    from_uint8 = engine.dream(as_uint8, config)
    from_float = engine.dream(as_uint8.astype(np.float32) / 255.0, config)
    assert from_uint8.image.size == image.size and from_uint8.image.mode == "RGB"
    assert np.array_equal(np.asarray(from_pil.image), np.asarray(from_uint8.image))
    assert np.abs(_pixels(from_float) - _pixels(from_uint8)).max() <= 1
    for bad, message in [
        (as_uint8[..., 0], "height × width × 3"),
        (as_uint8.astype(np.float32), r"finite values in \[0, 1\]"),
        (np.where(as_uint8 > 100, np.nan, 0.5).astype(np.float32), "finite"),
        (as_uint8.astype(np.int64), "uint8 or float"),
    ]:
        with pytest.raises(StylizeError, match=message):
            engine.dream(bad, config)


def test_a_gradient_that_is_not_finite_stops_the_dream(engine) -> None:
    """The update reports a gradient that is not finite; the dream then raises."""
    layout = TileLayout.for_image(150, 150, 512)
    update = make_update(layout, "mean_abs")
    image = tf.zeros((150, 150, 3))
    grads = tuple(tf.fill((1, th, tw, 3), np.nan) for th, tw in layout.shapes)
    _, finite = update(image, tf.zeros(2, tf.int32), grads, tf.constant(0.01))
    assert not bool(finite)
    grads = tuple(tf.ones((1, th, tw, 3)) for th, tw in layout.shapes)
    new, finite = update(image, tf.zeros(2, tf.int32), grads, tf.constant(0.01))
    assert bool(finite) and np.allclose(new.numpy(), 0.01)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"step_size": float("inf")}, "step size must be greater than 0 and at most 1"),
        ({"step_size": float("nan")}, "step size"),
        ({"layers": (("mixed4", 1e308),)}, "finite number within ±1000"),
        ({"layers": (("mixed4", float("-inf")),)}, "finite number"),
        ({"octave_scale": float("inf")}, "octave scale"),
        ({"steps": 10**9}, "steps must be at most 10000"),
        ({"seed": -1}, "seed must be 0 or more"),
    ],
)
def test_numbers_out_of_range_are_refused(change: dict, message: str) -> None:
    with pytest.raises(StylizeError, match=message):
        dataclasses.replace(DreamConfig(), **change).validate()


def test_bf16_dreams_look_like_fp32_dreams(engine) -> None:
    """The quality bar for reduced precision, on real photos (bf16 runs on CPUs too).

    DeepDream amplifies any rounding: fp32 against fp32 on an input changed by 1e-6 has
    a pixel SSIM of only 0.87–0.92 after 16 steps. So: SSIM ≥ 0.95 after a 1.5 px blur
    (structure, not the pixel-exact texture), bf16 as close to fp32 in raw SSIM as that
    1e-6 control is (within 0.05), and the objective within 4 %."""
    config = dataclasses.replace(CLASSIC, steps=4)
    images = [np.asarray(photo(name, size)) / np.float32(255) for name, size in
              [("astronaut", 256), ("chelsea", 300)]]  # fmt: skip
    rng = np.random.default_rng(0)
    nudged = [np.clip(i + 1e-6 * rng.standard_normal(i.shape), 0, 1) for i in images]
    full = engine.dream_many(images, config)
    control = engine.dream_many(nudged, config)
    low = engine.dream_many(images, dataclasses.replace(config, precision="bf16"))

    def ssim(a, b, blur: float = 0.0) -> float:
        x, y = _pixels(a), _pixels(b)
        if blur:
            x, y = (ndimage.gaussian_filter(v, (blur, blur, 0)) for v in (x, y))
        return structural_similarity(x, y, channel_axis=2, data_range=255)

    for a, b, c in zip(full, low, control, strict=True):
        assert ssim(a, b, blur=1.5) >= 0.95
        assert ssim(a, b) >= ssim(a, c) - 0.05
        assert b.objective_after == pytest.approx(a.objective_after, rel=0.04)


def test_a_precision_the_device_cannot_do_is_one_clear_error(engine, caplog) -> None:
    config = dataclasses.replace(get_preset("fast"), steps=1)
    if engine.device.startswith("GPU"):
        pytest.fail("run on a CPU: this test checks the CPU's answers")  # pragma: no cover
    with pytest.raises(StylizeError, match="fp16 needs a GPU"):
        engine.dream(photo("coffee", 160), dataclasses.replace(config, precision="fp16"))
    with caplog.at_level(logging.INFO, logger="dreamcrawl.stylize.engine"):
        tf32 = engine.dream(photo("coffee", 160), dataclasses.replace(config, precision="tf32"))
    assert "on the CPU it computes in fp32" in caplog.text
    fp32 = engine.dream(photo("coffee", 160), config)
    assert np.array_equal(np.asarray(tf32.image), np.asarray(fp32.image))


def test_running_out_of_memory_halves_the_batch(caplog) -> None:
    """TensorFlow's own out-of-memory error, raised by a function that cannot take more
    than 3 tiles: the runner halves its budget, logs it, and still computes every tile."""
    seen: list[int] = []

    def small_device(tiles):
        if tiles.shape[0] > 3:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        seen.append(int(tiles.shape[0]))
        return tiles * 2

    halved: list[int] = []
    runner = BatchRunner(budget=16 * 100, on_halve=halved.append)
    pieces = [((10, 10), tf.ones((5, 10, 10, 3))), ((10, 10), tf.ones((6, 10, 10, 3)))]
    with caplog.at_level(logging.WARNING, logger="dreamcrawl.stylize.batching"):
        out = runner.run(small_device, pieces)
    assert [int(o.shape[0]) for o in out] == [5, 6] and all(np.all(o.numpy() == 2) for o in out)
    assert sum(seen) == 11 and max(seen) <= 3
    assert halved and runner.budget <= 3 * 100 and "out of device memory" in caplog.text
    with pytest.raises(StylizeError, match="single 10×10 px tile"):
        BatchRunner(100).run(lambda t: small_device(tf.tile(t, [4, 1, 1, 1])), pieces[:1])
