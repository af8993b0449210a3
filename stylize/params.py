"""The dream parameters a user chooses: one typed model from every surface to the engine.

:class:`DreamParams` is what the CLI flags build (``dream``, ``stylize``, ``run``), what
every flow takes (Prefect renders it as a nested form: presets and layers are
dropdowns, each field carries its description), and what each dream job carries to
:meth:`DreamParams.config`, the one place a preset and its overrides become the
engine's :class:`~stylize.config.DreamConfig`. A field left empty keeps the preset's
value. Adding a field here adds the CLI flag, the form field and the catalog record
(``params_json``) at once; tests/test_dream_params.py checks each surface.
"""

from __future__ import annotations

import dataclasses
import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stylize.config import PRESETS, DreamConfig, get_preset, parse_channel, parse_layers
from stylize.errors import StylizeError
from stylize.limits import DREAM_MAX_PIXELS, MAX_PIXELS, MIN_DREAM_PIXELS
from stylize.network import LAYER_NAMES

# One member per preset and per layer, from their one source (stylize.config / network).
Preset = StrEnum("Preset", [(name.replace("-", "_"), name) for name in PRESETS])  # type: ignore[misc]
Preset.__doc__ = "A named, versioned parameter set (docs/engine.md, 'Presets')."
Layer = StrEnum("Layer", [(name, name) for name in LAYER_NAMES])  # type: ignore[misc]
Layer.__doc__ = "An InceptionV3 block whose activations a dream maximizes."


class Start(StrEnum):
    """What the dream starts from."""

    IMAGE = "image"
    NOISE = "noise"


class Precision(StrEnum):
    """The network's arithmetic: fp32 everywhere; tf32/bf16/fp16 are for GPUs (fp16 needs one)."""

    FP32 = "fp32"
    TF32 = "tf32"
    BF16 = "bf16"
    FP16 = "fp16"


DEFAULT_PRESET = "fast"
KEEP = "Empty: keep the preset's value."


def _plain_optional(schema: dict[str, Any]) -> None:
    """Show ``X | None`` fields as a plain X field that may be left empty.

    Prefect's form would otherwise offer a type picker whose second choice reads
    "Property is type None"; the description says plainly what empty means.
    """
    for prop in schema.get("properties", {}).values():
        choices = prop.get("anyOf") or []
        rest = [c for c in choices if c != {"type": "null"}]
        if len(rest) == 1 and len(choices) == 2:
            del prop["anyOf"]
            prop.update(rest[0])


class LayerWeight(BaseModel):
    """One layer of the objective and its weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: Layer = Field(description="InceptionV3 block, mixed0 (edges) .. mixed10 (objects).")
    weight: float = Field(1.0, description="Weight of this layer's loss.", allow_inf_nan=False)


class Channel(BaseModel):
    """One channel of one layer, maximized alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layer: Layer = Field(description="InceptionV3 block, e.g. mixed4.")
    index: int = Field(ge=0, description="Channel index within the layer, e.g. 97.")


class DreamParams(BaseModel):
    """What to dream: presets, and values that replace the presets' own."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, json_schema_extra=_plain_optional
    )

    presets: list[Preset] = Field(
        default_factory=lambda: [Preset(DEFAULT_PRESET)],
        min_length=1,
        description="Parameter sets; one dream per image per preset.",
    )
    layers: list[LayerWeight] | None = Field(
        None, description=f"Layers to maximize, with weights. {KEEP}"
    )
    channel: Channel | None = Field(
        None, description=f"Maximize one channel of one layer instead of whole layers. {KEEP}"
    )
    class_index: int | None = Field(
        None,
        ge=0,
        le=999,
        description="Maximize ImageNet class K's score (weights with a classifier). "
        "Empty: maximize layers.",
    )
    octaves: int | None = Field(
        None, ge=1, le=20, description=f"Number of scales (each at least 75 px). {KEEP}"
    )
    octave_scale: float | None = Field(
        None, gt=1, le=4, description=f"Ratio between scales. {KEEP}"
    )
    steps: int | None = Field(
        None, ge=0, le=10_000, description=f"Gradient-ascent steps per octave. {KEEP}"
    )
    step_size: float | None = Field(
        None,
        gt=0,
        le=1,
        description=f"Step on [-1, 1] pixels after gradient normalization. {KEEP}",
    )
    tile: int | None = Field(
        None, ge=160, le=4096, description=f"Largest tile side in px (bounds memory). {KEEP}"
    )
    seed: int | None = Field(
        None,
        ge=0,
        lt=2**32,
        description=f"Random seed (rolls, noise): same seed, same CPU output. {KEEP}",
    )
    start: Start | None = Field(
        None, description=f"Start from the image or from random noise. {KEEP}"
    )
    precision: Precision | None = Field(
        None, description=f"Network precision: tf32/bf16/fp16 are for GPUs (fp16 needs one). {KEEP}"
    )
    max_pixels: int | None = Field(
        None,
        ge=MIN_DREAM_PIXELS,
        le=MAX_PIXELS,
        description=f"Pixel budget of a dream: a larger image is refused, or downscaled with "
        f"fit. Empty: {DREAM_MAX_PIXELS} (2048×2048).",
    )
    fit: bool | None = Field(
        None, description="Downscale an image above the pixel budget instead of refusing it."
    )

    # -- building ---------------------------------------------------------------

    @classmethod
    def parse(cls, **values: Any) -> DreamParams:
        """Validate ``values``; a mistake is one :class:`StylizeError` line.

        Besides the model's own form, ``layers`` and ``channel`` take the text the CLI
        and serve configs use (``mixed4=1.0,mixed5=1.5``, ``mixed4:97``) and ``presets``
        one name.
        """
        text_syntax = {"layers": parse_layer_list, "channel": parse_channel_text}
        for name, parse_text in text_syntax.items():
            if isinstance(values.get(name), str):
                values[name] = parse_text(values[name])
        if isinstance(values.get("presets"), str):
            values["presets"] = [values["presets"]]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise StylizeError(first_error(exc)) from None

    def config(self, preset: str | None = None) -> DreamConfig:
        """The engine's validated config for ``preset`` (default: the first preset)."""
        base = get_preset(str(preset or self.presets[0]))
        changes: dict[str, Any] = {}
        if self.layers:
            changes["layers"] = tuple((str(lw.layer), lw.weight) for lw in self.layers)
            changes["channel"] = None
        if self.channel is not None:
            if self.layers and [str(lw.layer) for lw in self.layers] != [str(self.channel.layer)]:
                raise StylizeError(
                    "--channel names its own layer; drop --layers or make them agree"
                )
            changes["layers"] = ((str(self.channel.layer), 1.0),)
            changes["channel"] = self.channel.index
        if self.class_index is not None:
            changes["class_index"] = self.class_index
        elif self.layers or self.channel is not None:
            changes["class_index"] = None
        for name in ("octaves", "octave_scale", "steps", "step_size", "tile", "seed"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        for name in ("start", "precision"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = str(value)
        if self.max_pixels is not None:
            changes["max_pixels"] = self.max_pixels
        if self.fit is not None:
            changes["fit"] = self.fit
        return dataclasses.replace(base, **changes).validate()

    def configs(self) -> dict[str, DreamConfig]:
        """Every preset's config, validated (bad input fails here, before any work)."""
        return {str(p): self.config(p) for p in dict.fromkeys(self.presets)}


def first_error(exc: ValidationError) -> str:
    """Pydantic's first complaint as one line: what, what is accepted, the value given."""
    error = exc.errors()[0]
    where = " ".join(str(part).replace("_", " ") for part in error["loc"]) or "parameters"
    message = error["msg"].replace("Input should be", "must be")
    given = error.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
    return f"{where} {message}{shown}"


def _check_layer(name: str) -> str:
    if name not in LAYER_NAMES:
        raise StylizeError(f"unknown layer '{name}'; valid layers: {', '.join(LAYER_NAMES)}")
    return name


def parse_layer_list(text: str) -> list[dict[str, Any]]:
    """``mixed3,mixed5`` or ``mixed4=1.0,mixed5=1.5`` → layer/weight pairs (CLI, configs)."""
    layers = []
    for name, weight in parse_layers(text):
        if not math.isfinite(weight):
            raise StylizeError(f"layer weight for {name} must be a finite number")
        layers.append({"layer": _check_layer(name), "weight": weight})
    return layers


def parse_channel_text(text: str) -> dict[str, Any]:
    """``mixed4:97`` → ``{"layer": "mixed4", "index": 97}`` (CLI, configs)."""
    name, index = parse_channel(text)
    return {"layer": _check_layer(name), "index": index}
