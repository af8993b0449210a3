"""DeepDream engine vs a baseline written the TF-tutorial way, in one process.

(a) One 1024 px photo through the ``classic`` preset: pixels computed per second by our
    engine and by the baseline, their ratio, and the FLOP/s our engine achieves (FLOPs
    of the conv layers of each executed call, forward + backward to the input) as a
    fraction of a 4096² float32 matmul measured in the same process — over its
    gradient steps (FLOPs per step ÷ time per step), and over the whole dream, whose two
    scoring passes and octave resizes count too.
(b) 20 photos of mixed sizes (300–1600 px) through the same preset: images per minute,
    each side counting its model build and every tf.function trace.
(c) 32 crawled-size photos (300–1600 px, mixed sizes and aspect ratios) through the same
    preset: ``Engine.dream_many`` (all 32 together, their tiles sharing network calls)
    against ``Engine.dream`` one at a time, on one engine, both traced beforehand: images
    per minute, tiles per network call, and FLOP/s as a fraction of the matmul peak.

The baseline is the reference recipe: Keras' InceptionV3 with its batch-norm layers, a
plain ``@tf.function`` computing one tile's gradient, a Python loop over tiles of 512
(covering every tile: the last one is shifted back inside the image, where the tutorial
would skip it), random rolls; same octaves, steps, step size and objective as ours.

Timings are bimodal between processes, so by default the measurements run in several
fresh processes and the medians are printed. ``--small`` is a quick run for CI.

    python benchmarks/bench_dream.py                 # full run (~15 min per process)
    python benchmarks/bench_dream.py --parts a --processes 5 --json a.json
    python benchmarks/bench_dream.py --parts c --processes 3 --json c.json
    python benchmarks/bench_dream.py --small --processes 1   # CI: about 2 minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.dream_figures import PEAK_SIDE, StepTimer, dream_flops, matmul_peak  # noqa: E402
from benchmarks.tutorial_baseline import TutorialBaseline  # noqa: E402


def photos(sizes: list[int]) -> list:
    """Real photos (scikit-image samples), resized so their longer side is each size."""
    from PIL import Image
    from skimage import data

    names = ["astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry"]
    images = []
    for index, size in enumerate(sizes):
        pixels = getattr(data, names[index % len(names)])()
        image = Image.fromarray(np.asarray(pixels)).convert("RGB")
        scale = size / max(image.size)
        shape = (round(image.width * scale), round(image.height * scale))
        images.append(image.resize(shape, Image.Resampling.LANCZOS))
    return images


def dream_pixels(config, image) -> int:
    from stylize.engine import octave_shapes

    shapes = octave_shapes(image.height, image.width, config.octaves, config.octave_scale, True)
    return sum(h * w for h, w in shapes) * config.steps


def crawled_sizes(count: int) -> list[int]:
    """Longer sides of ``count`` crawled-size photos, 300–1600 px, in a fixed mixed order."""
    sizes = [300 + round(i * 1300 / max(1, count - 1)) for i in range(count)]
    return [int(s) for s in np.random.default_rng(1).permutation(sizes)]


def worker(
    small: bool,
    parts: str = "abc",
    photos_c: int = 32,
    precision: str = "fp32",
    many_first: bool = False,
) -> dict:
    """One process: build both sides, run (a), (b) and/or (c), return the figures."""
    from stylize.config import get_preset
    from stylize.engine import Engine
    from stylize.weights import load_weights, resolve_weights

    config = dataclasses.replace(get_preset("classic"), precision=precision)
    size_a = 1024
    sizes_b = [300 + round(i * 1300 / 19) for i in range(20)]
    if small:
        config = dataclasses.replace(config, steps=2, octaves=2)
        size_a, sizes_b = 384, [300, 420, 360]
        PEAK_SIDE["n"] = 1024
    rng = np.random.default_rng(0)
    sizes_b = [int(s) for s in rng.permutation(sizes_b)]
    source, path = resolve_weights()
    peak = matmul_peak()

    started = time.perf_counter()
    engine = Engine(load_weights(source, path))
    ours_build = time.perf_counter() - started
    baseline = TutorialBaseline(path, config)

    (photo_a,) = photos([size_a])
    results: dict = {"device": engine.device, "small": small, "peak_flops": peak}
    results["precision"] = precision
    results["peak_side"] = PEAK_SIDE["n"]
    if "a" in parts:
        results["a"] = part_a(engine, baseline, config, photo_a, peak)
    if "b" in parts:
        results["b"] = part_b(source, path, config, sizes_b)
        results["b"]["ours_build_s"] = ours_build
        results["b"]["baseline_build_s"] = baseline.build_seconds
    if "c" in parts:
        sizes_c = [300, 420, 360, 333] if small else crawled_sizes(photos_c)
        results["c"] = part_c(engine, config, photos(sizes_c), peak, many_first)
    return results


def part_a(engine, baseline, config, photo_a, peak: float) -> dict:
    """(a) throughput: both sides traced beforehand for every shape they will see."""
    pixels_a = dream_pixels(config, photo_a)
    engine.dream(photo_a, dataclasses.replace(config, steps=1, octaves=1))
    baseline.warm(photo_a)
    peaks = [peak]
    timer = StepTimer(engine)
    started = time.perf_counter()
    engine.dream(photo_a, config)
    ours_a = time.perf_counter() - started
    peaks.append(matmul_peak())
    started = time.perf_counter()
    baseline.dream(photo_a)
    base_a = time.perf_counter() - started
    peaks.append(matmul_peak())
    # The machine may be shared: the matmul is measured around the runs, median taken.
    peak = statistics.median(peaks)
    step_flops, dream_total = dream_flops(engine, config, photo_a)
    return {
        "peak_flops": peak,
        "pixels": pixels_a,
        "ours_s": ours_a,
        "ours_steps_s": timer.seconds,
        "baseline_s": base_a,
        "ours_px_per_s": pixels_a / ours_a,
        "baseline_px_per_s": pixels_a / base_a,
        "ratio": base_a / ours_a,
        "ours_flops": dream_total / ours_a,
        "ours_flop_fraction": dream_total / ours_a / peak,
        "ours_step_flops": step_flops / timer.seconds,
        "ours_step_flop_fraction": step_flops / timer.seconds / peak,
    }


def timings(images: int, **seconds: float) -> dict[str, float]:
    """``NAME_s`` and ``NAME_images_per_min`` for each side that dreamed ``images``."""
    fields: dict[str, float] = {}
    for name, spent in seconds.items():
        fields[f"{name}_s"] = spent
        fields[f"{name}_images_per_min"] = 60 * images / spent
    return fields


def part_b(source: str, path: Path, config, sizes_b: list[int]) -> dict:
    """(b) images per minute: fresh sides, so model builds and every trace are counted."""
    from stylize.engine import Engine
    from stylize.weights import load_weights

    batch = photos(sizes_b)
    started = time.perf_counter()
    engine_b = Engine(load_weights(source, path))
    for image in batch:
        engine_b.dream(image, config)
    ours_b = time.perf_counter() - started
    started = time.perf_counter()
    baseline_b = TutorialBaseline(path, config)
    for image in batch:
        baseline_b.dream(image)
    base_b = time.perf_counter() - started
    return {
        "images": len(batch),
        "sizes": sizes_b,
        **timings(len(batch), ours=ours_b, baseline=base_b),
        "ratio": base_b / ours_b,
        "ours_traces": engine_b.trace_count(),
        "baseline_traces": baseline_b.traces(),
    }


def warm(engine, config, batch: list) -> None:
    """Trace what a dream of ``batch`` uses, without dreaming: the network functions on
    one small tile, split and update on zeros of every octave's size."""
    import tensorflow as tf

    from stylize.engine import TileLayout, octave_shapes

    gradient, evaluate = engine.functions(config)
    gradient(tf.zeros((1, 139, 139, 3)))
    evaluate(tf.zeros((1, 139, 139, 3)))
    shift = tf.zeros(2, tf.int32)
    for image in batch:
        h, w = image.height, image.width
        for shape in octave_shapes(h, w, config.octaves, config.octave_scale, clamp=True):
            layout = TileLayout.for_image(*shape, config.tile)
            split, update = engine.layout_functions(layout, config.grad_norm)
            zeros = tf.zeros((*shape, 3))
            update(zeros, shift, split(zeros, shift), tf.constant(0.0))
        layout = TileLayout.for_image(h, w, config.tile)
        engine.layout_functions(layout, config.grad_norm)[0](tf.zeros((h, w, 3)), shift)


def part_c(engine, config, batch: list, peak: float, many_first: bool = False) -> dict:
    """(c) ``dream_many`` against ``dream`` one at a time, same engine, traced beforehand."""
    warm(engine, config, batch)
    traces = engine.trace_count(), engine.layout_trace_count()
    timer = StepTimer(engine)

    def alone() -> tuple[float, float, int, int]:
        timer.seconds, started, calls, tiles = 0.0, time.perf_counter(), 0, 0
        for image in batch:
            engine.dream(image, config)
            calls, tiles = calls + engine.last_runner.calls, tiles + engine.last_runner.tiles
        return time.perf_counter() - started, timer.seconds, calls, tiles

    def together() -> tuple[float, float]:
        timer.seconds, started = 0.0, time.perf_counter()
        engine.dream_many(batch, config)
        return time.perf_counter() - started, timer.seconds

    # Odd processes run the batch first, so a load that changes during a process
    # weighs on both sides over several processes.
    if many_first:
        (many_s, many_steps_s), peaks = together(), [peak, matmul_peak()]
        many_runner = engine.last_runner
        alone_s, alone_steps_s, calls, tiles = alone()
    else:
        alone_s, alone_steps_s, calls, tiles = alone()
        peaks = [peak, matmul_peak()]
        (many_s, many_steps_s), many_runner = together(), engine.last_runner
    peaks.append(matmul_peak())
    peak = statistics.median(peaks)
    cache: dict = {}
    flops = [dream_flops(engine, config, image, cache) for image in batch]
    step_flops, total_flops = sum(f[0] for f in flops), sum(f[1] for f in flops)
    return {
        "images": len(batch),
        "sizes": [max(image.size) for image in batch],
        "peak_flops": peak,
        **timings(len(batch), alone=alone_s, many=many_s),
        "ratio": alone_s / many_s,
        "alone_tiles_per_call": tiles / calls,
        "many_tiles_per_call": many_runner.tiles / many_runner.calls,
        "many_first": many_first,
        "alone_flop_fraction": total_flops / alone_s / peak,
        "many_flop_fraction": total_flops / many_s / peak,
        "alone_step_flop_fraction": step_flops / alone_steps_s / peak,
        "many_step_flop_fraction": step_flops / many_steps_s / peak,
        "retraced": [engine.trace_count(), engine.layout_trace_count()] != list(traces),
    }


def report(runs: list[dict]) -> None:
    runs_a = [run["a"] for run in runs if "a" in run]
    runs_b = [run["b"] for run in runs if "b" in run]
    runs_c = [run["c"] for run in runs if "c" in run]

    def med(part: list[dict], key: str) -> float:
        return statistics.median(run[key] for run in part)

    def each(part: list[dict], key: str, scale: float = 1.0, unit: str = "") -> str:
        return ", ".join(f"{scale * run[key]:.2f}{unit}" for run in part)

    lines = [f"device: {runs[0]['device']}, small: {runs[0]['small']}, "]
    lines[0] += f"precision: {runs[0].get('precision', 'fp32')}"
    if runs_a:
        lines += [
            f"(a) one photo, classic preset, {len(runs_a)} processes (medians):",
            f"    {runs[0].get('peak_side', 4096)}² float32 matmul "
            f"{med(runs_a, 'peak_flops') / 1e9:.0f} GFLOP/s",
            f"    ours     {med(runs_a, 'ours_px_per_s') / 1e6:.3f} Mpx/s "
            f"({med(runs_a, 'ours_s'):.1f} s)",
            f"    baseline {med(runs_a, 'baseline_px_per_s') / 1e6:.3f} Mpx/s "
            f"({med(runs_a, 'baseline_s'):.1f} s)",
            f"    ratio    {med(runs_a, 'ratio'):.2f}× (per process: {each(runs_a, 'ratio')})",
            f"    ours, gradient steps {med(runs_a, 'ours_step_flops') / 1e9:.0f} GFLOP/s = "
            f"{100 * med(runs_a, 'ours_step_flop_fraction'):.0f}% of the matmul "
            f"(per process: {each(runs_a, 'ours_step_flop_fraction', 100, '%')})",
            f"    ours, whole dream    {med(runs_a, 'ours_flops') / 1e9:.0f} GFLOP/s = "
            f"{100 * med(runs_a, 'ours_flop_fraction'):.0f}% of the matmul "
            f"(per process: {each(runs_a, 'ours_flop_fraction', 100, '%')})",
        ]
    if runs_b:
        first = runs_b[0]
        lines += [
            f"(b) {first['images']} photos of {min(first['sizes'])}–{max(first['sizes'])} px, "
            f"classic preset, model builds and traces included, {len(runs_b)} processes:",
            f"    ours     {med(runs_b, 'ours_images_per_min'):.2f} images/min "
            f"({med(runs_b, 'ours_s'):.0f} s, {first['ours_traces']} traces)",
            f"    baseline {med(runs_b, 'baseline_images_per_min'):.2f} images/min "
            f"({med(runs_b, 'baseline_s'):.0f} s, {first['baseline_traces']} traces)",
            f"    ratio    {med(runs_b, 'ratio'):.2f}× (per process: {each(runs_b, 'ratio')})",
        ]
    if runs_c:
        first = runs_c[0]
        lines += [
            f"(c) {first['images']} photos of {min(first['sizes'])}–{max(first['sizes'])} px, "
            f"classic preset, dream_many vs one at a time, {len(runs_c)} processes (medians):",
            f"    together {med(runs_c, 'many_images_per_min'):.2f} images/min "
            f"({med(runs_c, 'many_s'):.0f} s), {med(runs_c, 'many_tiles_per_call'):.1f} tiles "
            f"per call, {100 * med(runs_c, 'many_flop_fraction'):.0f}% of the matmul "
            f"(steps {100 * med(runs_c, 'many_step_flop_fraction'):.0f}%)",
            f"    alone    {med(runs_c, 'alone_images_per_min'):.2f} images/min "
            f"({med(runs_c, 'alone_s'):.0f} s), {med(runs_c, 'alone_tiles_per_call'):.1f} tiles "
            f"per call, {100 * med(runs_c, 'alone_flop_fraction'):.0f}% of the matmul "
            f"(steps {100 * med(runs_c, 'alone_step_flop_fraction'):.0f}%)",
            f"    ratio    {med(runs_c, 'ratio'):.2f}× (per process: {each(runs_c, 'ratio')})",
        ]
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes and steps (CI)")
    parser.add_argument("--processes", type=int, default=3, help="fresh processes to run")
    parser.add_argument("--parts", default="abc", help="which measurements: any of a, b, c")
    parser.add_argument("--photos", type=int, default=32, help="photos in part (c)")
    parser.add_argument(
        "--precision", default="fp32", help="ours: fp32, tf32, bf16 or fp16 (baseline: fp32)"
    )
    parser.add_argument(
        "--json", type=Path, help="keep every process's figures in this file (appended)"
    )
    parser.add_argument("--report", action="store_true", help="only print the --json file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--many-first", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--first-index", type=int, default=0, help="number of this run's first process (order)"
    )
    args = parser.parse_args()
    if args.worker:
        figures = worker(args.small, args.parts, args.photos, args.precision, args.many_first)
        print(json.dumps(figures))
        return 0
    runs = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    for index in range(0 if args.report else args.processes):
        command = [sys.executable, __file__, "--worker", "--parts", args.parts]
        command += ["--photos", str(args.photos), "--precision", args.precision]
        command += ["--many-first"] if (index + args.first_index) % 2 else []
        command += ["--small"] if args.small else []
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-3000:])
            return 1
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1))
        print(f"process {index + 1}/{args.processes} done", file=sys.stderr)
    report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
