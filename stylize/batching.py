"""Network calls shared by tiles of many images, sized by a memory budget.

:class:`BatchRunner` takes tiles grouped by shape from any number of images, concatenates
the tiles of each shape on the device, and calls a network function on chunks of at most
``budget`` pixels. A chunk that runs out of device memory is retried in halves and the
budget halved for the rest of the process (logged). :func:`device_budget_pixels` picks the
budget: a fixed one on a CPU, one sized from free device memory on a GPU.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence

from stylize.errors import StylizeError

log = logging.getLogger("dreamcrawl.stylize.batching")

# Four full tiles of the default 512 px (523 px as InceptionV3 sees them): on a CPU,
# 4 × 523² px per call is as fast per pixel as any larger batch (docs/engine.md).
CPU_BATCH_PIXELS = 4 * 523 * 523
# Share of free device memory a gradient call may use; the rest is TF's workspace.
GPU_MEMORY_SHARE = 0.5
DEFAULT_GPU_BYTES = 16 * 2**30


class BatchRunner:
    """Runs ``fn(tiles)`` over tiles of many images, at most ``budget`` pixels per call."""

    def __init__(self, budget: int, on_halve: Callable[[int], None] | None = None) -> None:
        self.budget = budget
        self.on_halve = on_halve
        self.calls = 0
        self.tiles = 0

    def run(self, fn: Callable, pieces: Sequence[tuple[tuple[int, int], object]]) -> list:
        """``pieces`` are ``(shape, tiles)``; returns ``fn``'s output for each, in order."""
        import tensorflow as tf

        results: list = [None] * len(pieces)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, (shape, _) in enumerate(pieces):
            by_shape.setdefault(shape, []).append(index)
        for (th, tw), indices in by_shape.items():
            parts = [pieces[i][1] for i in indices]
            tiles = parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)
            outputs = self._chunked(fn, tiles, th * tw)
            sizes = [int(p.shape[0]) for p in parts]
            split = [outputs] if len(parts) == 1 else tf.split(outputs, sizes, axis=0)
            for i, out in zip(indices, split, strict=True):
                results[i] = out
        return results

    def _chunked(self, fn: Callable, tiles, tile_pixels: int):
        import tensorflow as tf

        count = int(tiles.shape[0])
        per_call = max(1, self.budget // tile_pixels)
        if count <= per_call:
            return self._call(fn, tiles, tile_pixels)
        outs = [
            self._call(fn, tiles[start : start + per_call], tile_pixels)
            for start in range(0, count, per_call)
        ]
        return tf.concat(outs, axis=0)

    def _call(self, fn: Callable, tiles, tile_pixels: int):
        import tensorflow as tf

        count = int(tiles.shape[0])
        try:
            out = fn(tiles)
        except tf.errors.ResourceExhaustedError:
            if count == 1:
                side = int(tiles.shape[1]), int(tiles.shape[2])
                raise StylizeError(
                    f"out of device memory on a single {side[0]}×{side[1]} px tile; "
                    "use a smaller --tile"
                ) from None
            half = count // 2
            self.budget = max(tile_pixels, min(self.budget, half * tile_pixels))
            if self.on_halve is not None:
                self.on_halve(self.budget)
            log.warning(
                "out of device memory at %d tiles of %d px; batch budget now %d px per call",
                count,
                tile_pixels,
                self.budget,
            )
            first = self._call(fn, tiles[:half], tile_pixels)
            return tf.concat([first, self._call(fn, tiles[half:], tile_pixels)], axis=0)
        self.calls += 1
        self.tiles += count
        return out


def total_gpu_bytes() -> int | None:
    """The first GPU's memory in bytes, from ``nvidia-smi`` (None when it cannot tell)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits", "--id=0"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return int(float(done.stdout.strip().splitlines()[0])) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def device_budget_pixels(gpu: bool, bytes_per_pixel: float) -> int:
    """Pixels per network call: :data:`CPU_BATCH_PIXELS` on a CPU; on a GPU, the share
    :data:`GPU_MEMORY_SHARE` of the memory TensorFlow does not use yet, divided by what a
    gradient call needs per input pixel (logged, with where the figures came from)."""
    if not gpu:
        return CPU_BATCH_PIXELS
    import tensorflow as tf

    total = total_gpu_bytes()
    source = "nvidia-smi"
    if total is None:
        total, source = DEFAULT_GPU_BYTES, "assumed (nvidia-smi unavailable)"
    used = tf.config.experimental.get_memory_info("GPU:0")["current"]
    free = max(0, total - used)
    budget = max(CPU_BATCH_PIXELS // 4, int(GPU_MEMORY_SHARE * free / bytes_per_pixel))
    log.info(
        "GPU memory %.1f GiB (%s), %.1f GiB in use; %.0f bytes per tile pixel → "
        "batch budget %d px per call (%.1f tiles of 523²)",
        total / 2**30,
        source,
        used / 2**30,
        bytes_per_pixel,
        budget,
        budget / 523**2,
    )
    return budget
