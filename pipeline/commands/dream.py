"""`dreamcrawl dream IN OUT`: dream one image file into another, no catalog needed.

A preset gives every parameter; flags override some. Bad input exits 2 with one line on
stderr and nothing written at OUT (the result goes to a temporary file, then renamed).
"""

from __future__ import annotations

import argparse
import json
import time

DEFAULT_PRESET = "classic"


NAME = "dream"
DESCRIPTION = (
    "DeepDream one image with InceptionV3 (ImageNet). A preset sets every "
    "parameter; the other flags override it. See docs/engine.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.commands.dream_options import add_dream_options

    parser.add_argument("input", metavar="IN", help="image file to dream")
    parser.add_argument("output", metavar="OUT", help="file to write (.png, .jpg, .webp, …)")
    add_dream_options(parser, default_preset=DEFAULT_PRESET)
    parser.add_argument(
        "--json", action="store_true", help="print the result and its full parameters as JSON"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.commands.dream_options import params_from_args
    from stylize.image_io import check_writable, read_image, write_image
    from stylize.limits import DREAM_MAX_PIXELS, MAX_PIXELS

    params = params_from_args(args)
    config = params.config()
    original = read_image(args.input, max_pixels=MAX_PIXELS)
    image = config.fit_image(original, args.input)
    check_writable(args.output)

    from storage.settings import get_settings
    from stylize.engine import load_engine, octave_shapes

    width, height = image.size
    clamp = args.octaves is None
    octaves = len(octave_shapes(height, width, config.octaves, config.octave_scale, clamp))
    started = time.perf_counter()
    engine = load_engine(args.weights, get_settings().weights_dir)
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("dreaming", total=octaves * config.steps)

        def progress(octave: int, count: int, step: int, steps: int) -> None:
            bar.update(task, advance=1, description=f"octave {octave + 1}/{count} step {step}")

        result = engine.dream(image, config, progress=progress, clamp_octaves=clamp)
    write_image(result.image, args.output)
    elapsed = time.perf_counter() - started
    if image.size != original.size and not args.json:
        print(
            f"downscaled {args.input} from {original.width}×{original.height} to {width}×{height} "
            f"to fit --max-pixels {config.max_pixels or DREAM_MAX_PIXELS}"
        )
    if args.json:
        report = {
            "input": args.input,
            "output": args.output,
            "preset": args.preset,
            "params": config.as_dict(),
            "seconds": round(elapsed, 3),
            "device": result.device,
            "objective_before": result.objective_before,
            "objective_after": result.objective_after,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"dreamed {args.input} -> {args.output} ({width}×{height}, preset {args.preset}, "
        f"{config.describe()}, {octaves} octave(s) × {config.steps} steps) in {elapsed:.1f} s on "
        f"{result.device}; objective {result.objective_before:.4g} -> {result.objective_after:.4g}"
    )
    return 0
