"""Dream-parameter flags shared by ``dream``, ``stylize`` and ``run`` (a preset plus overrides)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

DEFAULT_PRESET = "fast"


def add_dream_options(
    parser: argparse.ArgumentParser,
    multiple_presets: bool = False,
    default_preset: str | None = None,
    one_image: bool = False,
) -> None:
    """--preset (repeatable when ``multiple_presets``), --layers, --channel, --octaves, …

    ``default_preset`` becomes --preset's default (otherwise it stays unset and the
    flows use :data:`DEFAULT_PRESET`); ``one_image`` adds the flags that only make sense
    for ``dream IN OUT``: --class-index, --start and --precision.
    """
    from stylize.config import PRESETS

    shown_default = default_preset or DEFAULT_PRESET
    parser.add_argument(
        "--preset",
        action="append" if multiple_presets else "store",
        default=default_preset,
        choices=list(PRESETS),
        metavar="NAME",
        help=f"parameter set: {', '.join(PRESETS)} (default {shown_default})"
        + ("; repeat for several" if multiple_presets else ""),
    )
    parser.add_argument(
        "--layers", metavar="LIST",
        help="layers to maximize: mixed3,mixed5 or with weights mixed4=1.0,mixed5=1.5",
    )  # fmt: skip
    parser.add_argument(
        "--channel", metavar="LAYER:INDEX", help="maximize one channel, e.g. mixed4:97"
    )
    if one_image:
        parser.add_argument(
            "--class-index", type=int, metavar="K",
            help="maximize ImageNet class K's score (needs weights with a classifier)",
        )  # fmt: skip
    parser.add_argument("--octaves", type=int, metavar="N", help="number of scales")
    parser.add_argument("--octave-scale", type=float, metavar="S", help="ratio between scales")
    parser.add_argument("--steps", type=int, metavar="N", help="gradient steps per octave")
    parser.add_argument("--step-size", type=float, metavar="X", help="step size (on [-1, 1])")
    parser.add_argument("--tile", type=int, metavar="N", help="largest tile side in px")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed (rolls, noise)")
    if one_image:
        parser.add_argument(
            "--start", choices=("image", "noise"), help="start from the image or random noise"
        )
        parser.add_argument(
            "--precision", choices=("fp32", "tf32", "bf16", "fp16"),
            help="network precision: tf32/bf16/fp16 are for GPUs (fp16 needs one); "
            "fp32 is fastest on CPUs",
        )  # fmt: skip
    parser.add_argument("--weights", metavar="PATH", help="InceptionV3 weights file")


def overrides_from_args(args: argparse.Namespace) -> Any:
    """The DreamOverrides the dream flags ask for (flags a command lacks count as unset)."""
    from flows.dreaming import DreamOverrides

    names = [f.name for f in dataclasses.fields(DreamOverrides)]
    return DreamOverrides(**{name: getattr(args, name, None) for name in names})


def dream_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The flow parameters these flags ask for, validated now (bad input: exit 2 at once)."""
    from flows.dreaming import build_config

    presets = args.preset or [DEFAULT_PRESET]
    if isinstance(presets, str):
        presets = [presets]
    overrides = overrides_from_args(args)
    for preset in presets:
        build_config(preset, overrides)
    return {
        "presets": list(dict.fromkeys(presets)),
        "layers": args.layers,
        "channel": args.channel,
        "octaves": args.octaves,
        "octave_scale": args.octave_scale,
        "steps": args.steps,
        "step_size": args.step_size,
        "tile": args.tile,
        "seed": args.seed,
        "weights": args.weights,
    }
