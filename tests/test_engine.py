"""The DeepDream engine on real weights and small real photos (scikit-image samples)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from stylize.config import PRESETS, DreamConfig, get_preset
from stylize.engine import TileLayout, octave_shapes, resize, tile_sizes
from stylize.errors import StylizeError
from stylize.image_io import to_array
from tests.weights_fixture import photo

MULTI = DreamConfig(layers=(("mixed3", 1.0), ("mixed5", 1.0)), octaves=1, step_size=0.01)
CHANNEL = DreamConfig(layers=(("mixed4", 1.0),), channel=97, octaves=1, step_size=0.01)


def _delta(result, original: Image.Image) -> np.ndarray:
    return to_array(result.image)[0] - to_array(original)[0]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _high_frequency(delta: np.ndarray) -> float:
    """Mean |Laplacian| of a dream's change relative to its mean size (noise ↑, value ↑)."""
    lap = 4 * delta[1:-1, 1:-1] - delta[:-2, 1:-1] - delta[2:, 1:-1]
    lap = lap - delta[1:-1, :-2] - delta[1:-1, 2:]
    return float(np.abs(lap).mean() / np.abs(delta).mean())


@pytest.mark.parametrize("config", [CHANNEL, MULTI], ids=["one-channel", "two-layers"])
def test_objective_rises_with_steps(engine, config: DreamConfig) -> None:
    image = photo("chelsea", 192)
    values = [engine.dream(image, dataclasses.replace(config, steps=n)) for n in (0, 3, 6)]
    after = [r.objective_after for r in values]
    assert values[0].objective_before == pytest.approx(after[0], rel=1e-6)
    assert after[0] < after[1] < after[2]
    assert after[2] > 1.1 * after[0]


def test_starting_from_noise_dreams_too(engine) -> None:
    config = dataclasses.replace(MULTI, start="noise", steps=6)
    result = engine.dream(photo("coffee", 160), config)
    assert result.objective_after > 1.1 * result.objective_before
    assert result.image.size == photo("coffee", 160).size


def test_octaves_give_coarser_patterns_for_the_same_step_budget(engine) -> None:
    """Same 24 steps: 3 octaves × 8 vs one scale × 24 (paper Fig. 19-21 vs 16-18).

    The octave dream has less high-frequency noise and scores higher at the coarse
    scales and on average over the scales; the single-scale dream, which spent every
    step at full size, scores higher at full size (see docs/engine.md).
    """
    image = photo("astronaut", 256)
    single = engine.dream(image, dataclasses.replace(MULTI, steps=24))
    octave = engine.dream(image, dataclasses.replace(MULTI, steps=8, octaves=3, octave_scale=1.3))
    assert len(octave.octave_shapes) == 3 and octave.octave_shapes[-1] == (256, 256)
    assert _high_frequency(_delta(octave, image)) < 0.85 * _high_frequency(_delta(single, image))

    def per_scale(result) -> list[float]:
        pixels = to_array(result.image)[0]
        return [engine.objective(resize(pixels, shape), MULTI) for shape in octave.octave_shapes]

    octave_scores, single_scores = per_scale(octave), per_scale(single)
    assert octave_scores[0] > 1.08 * single_scores[0]
    assert np.mean(octave_scores) > np.mean(single_scores)
    assert octave.objective_after > octave.objective_before * 1.2


def test_tiled_and_untiled_agree(engine) -> None:
    """2×2 tiles of 128 px vs the whole 256 px image: the dreams agree (after a light blur
    that removes the pixel-exact texture, which moves with every random roll) about as
    well as two untiled dreams with different seeds."""
    image = photo("astronaut", 256)
    config = dataclasses.replace(MULTI, steps=12, tile=512)
    untiled = _delta(engine.dream(image, config), image)
    other_seed = _delta(engine.dream(image, dataclasses.replace(config, seed=1)), image)
    tiled = _delta(engine.dream(image, dataclasses.replace(config, tile=160)), image)

    def blur(delta: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(delta, (3, 3, 0))

    baseline = _corr(blur(untiled), blur(other_seed))
    agreement = _corr(blur(untiled), blur(tiled))
    assert agreement > 0.7
    assert agreement > baseline - 0.12
    assert np.abs(tiled).mean() == pytest.approx(np.abs(untiled).mean(), rel=0.15)


def _border_ratio(delta: np.ndarray, border: int) -> float:
    """Change across the tile border vs the median change between neighbouring pixels."""
    dx = np.abs(np.diff(delta, axis=1)).mean(axis=(0, 2))
    dy = np.abs(np.diff(delta, axis=0)).mean(axis=(1, 2))
    return float((dx[border - 1] / np.median(dx) + dy[border - 1] / np.median(dy)) / 2)


def test_tiled_dream_leaves_no_seam_at_tile_borders(engine) -> None:
    image = photo("astronaut", 256)
    config = dataclasses.replace(MULTI, steps=10, tile=160)
    layout = TileLayout.for_image(256, 256, config.tile)
    assert (layout.rows, layout.cols) == ((139, 139), (139, 139))
    ours = _delta(engine.dream(image, config), image)

    # Negative control: the same tiles without random rolls leave a visible seam.
    pixels = to_array(image)[0]
    naive = pixels.copy()
    for _ in range(config.steps):
        grad = engine.tiled_gradient(naive, config)
        naive = np.clip(naive + config.step_size * grad / (grad.std() + 1e-8), -1, 1)
    assert _border_ratio(naive - pixels, 139) < 0.5
    assert _border_ratio(ours, 139) > 0.7


def test_every_pixel_gets_a_gradient(engine) -> None:
    """Unlike the TF tutorial's range(0, size, tile)[:-1], no row or column is skipped."""
    pixels = to_array(photo("coffee", 333))[0]
    config = dataclasses.replace(MULTI, tile=160)
    layout = TileLayout.for_image(*pixels.shape[:2], config.tile)
    assert layout.padded[0] >= pixels.shape[0] and layout.padded[1] >= pixels.shape[1]
    assert len(layout.rows) > 1 and len(layout.cols) > 1
    grad = engine.tiled_gradient(pixels, config)
    assert grad.shape == pixels.shape
    assert (np.abs(grad).max(axis=2) > 0).all()


def test_tile_split_and_join_are_inverse() -> None:
    import tensorflow as tf

    image = np.random.default_rng(0).random((301, 517, 3), dtype=np.float32)
    layout = TileLayout.for_image(301, 517, 160)
    groups = layout.split(tf.constant(image))
    assert [tuple(g.shape[1:3]) for g in groups] == list(layout.shapes)
    assert sum(int(g.shape[0]) for g in groups) == layout.count
    assert np.array_equal(layout.join(groups, 301, 517).numpy(), image)


@pytest.mark.parametrize("size", [75, 109, 153, 299, 300, 373, 522, 524, 731, 1024, 1047, 1600])
def test_tiles_come_from_five_sides_and_waste_the_fewest_pixels(size: int) -> None:
    import itertools

    sides = tile_sizes(512)
    assert sides == (523, 395, 267, 203, 139) and all((s - 11) % 32 == 0 for s in sides)
    layout = TileLayout.for_image(size, size, 512)
    assert len(set(layout.rows)) == 1 and layout.rows[0] in sides and layout.rows == layout.cols
    covered = sum(layout.rows)
    assert covered >= size
    # Reflection padding needs less padding than the image has pixels, and no other
    # number of equal tiles of a side covers the axis with fewer pixels.
    assert covered - size < min(size, min(sides))
    for side, count in itertools.product(sides, range(1, 20)):
        assert not size <= side * count < covered


def test_small_octaves_are_not_padded_to_the_largest_tile() -> None:
    """A 110 px octave is one 139 px tile, not a 523 px one (20× the work); all of an
    octave's tiles have one shape, so they go through the network in one call."""
    assert TileLayout.for_image(110, 110, 512).padded == (139, 139)
    assert TileLayout.for_image(1024, 1024, 512).shapes == ((523, 523),)
    # 151 px: one 203 px tile; 731 px: 2 × 395 (790 px) rather than 2 × 523.
    layout = TileLayout.for_image(151, 731, 512)
    assert (layout.rows, layout.cols, layout.shapes) == ((203,), (395, 395), ((203, 395),))
    # The octaves of a 1024 px photo (classic preset): 395, 523, 2 × 395, 2 × 523.
    sides = [TileLayout.for_image(n, n, 512).rows for n in (373, 522, 731, 1024)]
    assert sides == [(395,), (523,), (395, 395), (523, 523)]


def test_batching_tiles_does_not_change_the_result(engine) -> None:
    pixels = to_array(photo("chelsea", 256))[0]
    config = dataclasses.replace(MULTI, tile=160)
    together = engine.tiled_gradient(pixels, config)
    saved = engine.max_batch_pixels
    try:
        engine.max_batch_pixels = 1  # one tile per call
        alone = engine.tiled_gradient(pixels, config)
    finally:
        engine.max_batch_pixels = saved
    assert np.allclose(together, alone, rtol=1e-4, atol=1e-6 * np.abs(together).max())


def test_same_seed_same_pixels_and_no_retracing(engine) -> None:
    config = dataclasses.replace(get_preset("fast"), steps=2)
    first = engine.dream(photo("coffee", 200), config)
    traces = engine.trace_count()
    second = engine.dream(photo("coffee", 200), config)
    other_size = engine.dream(photo("chelsea", 300), config)
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))
    reseeded = engine.dream(photo("coffee", 200), dataclasses.replace(config, seed=7))
    assert not np.array_equal(np.asarray(first.image), np.asarray(reseeded.image))
    # Another image size and other octave sizes reuse the traced step.
    assert engine.trace_count() == traces
    assert other_size.image.size == (300, 200)


def test_result_keeps_size_mode_and_alpha(engine) -> None:
    rgba = photo("chelsea", 150).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 150, dtype=np.uint8), (rgba.height, 1))
    rgba.putalpha(Image.fromarray(alpha, "L"))
    config = dataclasses.replace(get_preset("fast"), steps=1)
    result = engine.dream(rgba, config)
    assert result.image.mode == "RGBA" and result.image.size == rgba.size
    assert np.array_equal(np.asarray(result.image)[..., 3], alpha)
    gray = engine.dream(photo("coffee", 160).convert("L"), config)
    assert gray.image.mode == "L" and gray.image.size == (160, 107)
    assert len(result.octave_timings) == len(result.octave_shapes)
    # The device that computed it, as the catalog records it: "CPU" or "GPU:/device:GPU:0".
    assert result.device == engine.device and result.device.split(":")[0] in ("CPU", "GPU")


def test_reduced_precision_stays_close_to_fp32(engine) -> None:
    precision = "fp16" if engine.device.startswith("GPU") else "bf16"
    image = photo("coffee", 160)
    config = dataclasses.replace(MULTI, steps=4)
    low_config = dataclasses.replace(config, precision=precision)
    pixels = to_array(image)[0]
    full, low = engine.tiled_gradient(pixels, config), engine.tiled_gradient(pixels, low_config)
    cosine = (full * low).sum() / np.linalg.norm(full) / np.linalg.norm(low)
    assert cosine > 0.95
    reference, reduced = engine.dream(image, config), engine.dream(image, low_config)
    assert reduced.objective_after == pytest.approx(reference.objective_after, rel=0.03)
    assert np.abs(_delta(reduced, image) - _delta(reference, image)).mean() < 0.02


def test_class_objective_needs_a_classifier(engine) -> None:
    config = dataclasses.replace(MULTI, class_index=207, steps=1)
    with pytest.raises(StylizeError, match="classifier"):
        engine.dream(photo("coffee", 160), config)


def test_octave_shapes_refuse_or_clamp_what_does_not_fit() -> None:
    assert octave_shapes(300, 400, 3, 1.4)[-1] == (300, 400)
    assert octave_shapes(300, 400, 3, 1.4)[0] == (153, 204)
    with pytest.raises(StylizeError, match="at most 3 fit"):
        octave_shapes(160, 400, 4, 1.4)
    assert len(octave_shapes(160, 400, 4, 1.4, clamp=True)) == 3
    with pytest.raises(StylizeError, match="at least 75"):
        octave_shapes(60, 400, 1, 1.4)


def test_presets_are_valid_and_hash_stably() -> None:
    assert set(PRESETS) == {
        "paper-single-channel",
        "paper-multilayer",
        "paper-octave",
        "tf-tutorial",
        "keras-example",
        "classic",
        "fast",
    }
    for config in PRESETS.values():
        config.validate()
    classic = get_preset("classic")
    assert classic.param_hash() == dataclasses.replace(classic).param_hash()
    assert classic.param_hash() != dataclasses.replace(classic, seed=1).param_hash()
    assert '"layers":{"mixed4":1.0,"mixed5":1.0}' in classic.canonical_json()
    with pytest.raises(StylizeError, match="valid layers: mixed0, mixed1"):
        dataclasses.replace(classic, layers=(("mixed11", 1.0),)).validate()
    with pytest.raises(StylizeError, match="768 channels"):
        dataclasses.replace(classic, layers=(("mixed4", 1.0),), channel=768).validate()
