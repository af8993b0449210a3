"""Dream-parameter flags shared by ``dream``, ``stylize`` and ``run``.

Every field of :class:`stylize.params.DreamParams` becomes one flag with the field's own
description as its help, and :func:`params_from_args` builds the model back from the
flags: a field added to the model is a flag of every command at once.
"""

from __future__ import annotations

import argparse
import enum
from typing import Any

from stylize.params import (
    DEFAULT_PRESET,
    DreamParams,
    Preset,
)

# Fields whose flag reads text in a syntax of its own (DreamParams.parse reads it).
METAVARS = {"layers": "LIST", "channel": "LAYER:INDEX"}
EXAMPLES = {"layers": " e.g. mixed3,mixed5 or mixed4=1.0,mixed5=1.5", "channel": " e.g. mixed4:97"}


def flag_of(field: str) -> str:
    """``step_size`` → ``--step-size``."""
    return "--" + field.replace("_", "-")


def _choices(annotation: Any) -> list[str] | None:
    for arg in getattr(annotation, "__args__", (annotation,)):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return [m.value for m in arg]
    return None


def _is_switch(annotation: Any) -> bool:
    """A yes/no field (``bool | None``) is a flag without a value."""
    return bool in getattr(annotation, "__args__", (annotation,))


def add_dream_options(
    parser: argparse.ArgumentParser,
    multiple_presets: bool = False,
    default_preset: str | None = None,
) -> None:
    """--preset (repeatable when ``multiple_presets``), then one flag per parameter.

    ``default_preset`` becomes --preset's default (otherwise it stays unset and the
    model's default, :data:`~stylize.params.DEFAULT_PRESET`, applies).
    """
    shown_default = default_preset or DEFAULT_PRESET
    presets = [p.value for p in Preset]
    parser.add_argument(
        "--preset",
        action="append" if multiple_presets else "store",
        default=default_preset,
        choices=presets,
        metavar="NAME",
        help=f"parameter set: {', '.join(presets)} (default {shown_default})"
        + ("; repeat for several" if multiple_presets else ""),
    )
    for name, field in DreamParams.model_fields.items():
        if name == "presets":
            continue
        metavar = METAVARS.get(name, name.upper().split("_")[-1])
        choices = _choices(field.annotation)
        help_text = (field.description or "") + EXAMPLES.get(name, "")
        if _is_switch(field.annotation):
            parser.add_argument(flag_of(name), dest=name, action="store_true", default=None,
                                help=help_text)  # fmt: skip
        elif choices:
            parser.add_argument(flag_of(name), dest=name, choices=choices, help=help_text)
        else:
            parser.add_argument(flag_of(name), dest=name, metavar=metavar, help=help_text)
    parser.add_argument("--weights", metavar="PATH", help="InceptionV3 weights file")


def params_from_args(args: argparse.Namespace) -> DreamParams:
    """The DreamParams the flags ask for, validated now (bad input: exit 2 at once)."""
    presets = args.preset or [DEFAULT_PRESET]
    values: dict[str, Any] = {"presets": [presets] if isinstance(presets, str) else presets}
    for name in DreamParams.model_fields:
        raw = getattr(args, name, None)
        if name == "presets" or raw is None:
            continue
        values[name] = raw
    params = DreamParams.parse(**values)
    params.configs()
    return params
