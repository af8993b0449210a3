"""Dream parameters (:class:`DreamConfig`) and the named, versioned presets.

A config is everything that decides a dream's pixels besides the image and the weights:
its :meth:`DreamConfig.canonical_json` (sorted keys, fixed float formatting) and
:meth:`DreamConfig.param_hash` identify a dream in the catalog, so a dream with the same
image, parameters and weights is never computed twice. Bump :data:`PRESETS_VERSION`
when a preset's values change and :data:`ENGINE_VERSION` when the algorithm does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from stylize.errors import StylizeError
from stylize.image_io import fit_to_budget
from stylize.limits import DREAM_MAX_PIXELS, check_dream_budget
from stylize.network import LAYER_CHANNELS, LAYER_NAMES, NUM_CLASSES

ENGINE_VERSION = 1
PRESETS_VERSION = 1
MIN_TILE = 160  # the smallest tile a grid produces is over half this: still ≥ 75 px
# Upper bounds: beyond them a dream is meaningless or overflows (docs/engine.md, "Errors").
LIMITS = {"octaves": 20, "steps": 10_000, "tile": 4096, "jitter": 1024, "seed": 2**63 - 1}
MAX_LAYER_WEIGHT = 1000.0

Reduction = Literal["mean", "mean_square"]
GradNorm = Literal["std", "mean_abs"]
Start = Literal["image", "noise"]
Precision = Literal["fp32", "tf32", "bf16", "fp16"]


@dataclass(frozen=True)
class DreamConfig:
    """What to maximize, and how.

    ``layers`` are ``(name, weight)`` pairs; each layer's activation is averaged
    (``reduction="mean"``, or its square averaged, ``"mean_square"``) so layers of
    different sizes weigh alike, then weighted and summed. With ``channel`` the single
    layer's one channel is averaged instead; with ``class_index`` the ImageNet class
    logit is maximized (needs weights with a classifier) and ``layers`` is ignored.
    """

    layers: tuple[tuple[str, float], ...] = (("mixed3", 1.0), ("mixed5", 1.0))
    channel: int | None = None
    class_index: int | None = None
    reduction: Reduction = "mean"
    octaves: int = 1
    octave_scale: float = 1.3
    steps: int = 100  # per octave
    step_size: float = 0.01
    grad_norm: GradNorm = "std"
    tile: int = 512
    jitter: int = 32  # max random roll in px per step (tiled axes also roll over a whole tile)
    seed: int = 0
    start: Start = "image"
    precision: Precision = "fp32"
    # The pixel budget (stylize/limits.py): None is the default budget; an image above
    # it is refused, or downscaled first with ``fit``.
    max_pixels: int | None = None
    fit: bool = False

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        # Recorded only when set, so that dreams planned before the budget existed keep
        # their parameter hash (and are not dreamed again).
        for name, unset in (("max_pixels", None), ("fit", False)):
            if data[name] == unset:
                del data[name]
        data["layers"] = {name: float(weight) for name, weight in self.layers}
        data["octave_scale"] = float(self.octave_scale)
        data["step_size"] = float(self.step_size)
        data["engine_version"] = ENGINE_VERSION
        return data

    def canonical_json(self) -> str:
        """Stable JSON of the parameters (sorted keys, no spaces)."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def param_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def objective_layers(self) -> tuple[tuple[str, float], ...]:
        return () if self.class_index is not None else self.layers

    @property
    def deepest(self) -> str:
        """The deepest output the objective needs (the network stops there)."""
        if self.class_index is not None:
            return "logits"
        return max((name for name, _ in self.layers), key=LAYER_NAMES.index)

    def describe(self) -> str:
        if self.class_index is not None:
            return f"class {self.class_index} logit"
        if self.channel is not None:
            return f"{self.layers[0][0]} channel {self.channel}"
        return " + ".join(f"{w:g}·{n}" for n, w in self.layers)

    def validate(self) -> DreamConfig:
        """Raise :class:`StylizeError` with what is accepted if any value is out of range."""
        valid = ", ".join(LAYER_NAMES)
        if self.class_index is None and not self.layers:
            raise StylizeError("no layer to maximize; give --layers with some of " + valid)
        for name, weight in self.layers:
            if name not in LAYER_CHANNELS:
                raise StylizeError(f"unknown layer '{name}'; valid layers: {valid}")
            if not (math.isfinite(weight) and abs(weight) <= MAX_LAYER_WEIGHT):
                raise StylizeError(
                    f"layer weight for {name} must be a finite number within "
                    f"±{MAX_LAYER_WEIGHT:g}, got {weight:g}"
                )
        if self.channel is not None:
            if len(self.layers) != 1:
                raise StylizeError("a channel objective takes exactly one layer, e.g. mixed4:97")
            name = self.layers[0][0]
            count = LAYER_CHANNELS[name]
            if not 0 <= self.channel < count:
                raise StylizeError(
                    f"channel {self.channel} is out of range for {name}, "
                    f"which has {count} channels (0..{count - 1})"
                )
        if self.class_index is not None and not 0 <= self.class_index < NUM_CLASSES:
            raise StylizeError(
                f"class index must be in 0..{NUM_CLASSES - 1}, got {self.class_index}"
            )
        if self.octaves < 1:
            raise StylizeError(f"octaves must be at least 1, got {self.octaves}")
        if not (math.isfinite(self.octave_scale) and 1 < self.octave_scale <= 4):
            raise StylizeError(
                f"octave scale must be greater than 1 and at most 4, got {self.octave_scale:g}"
            )
        if self.steps < 0:
            raise StylizeError(f"steps must be 0 or more, got {self.steps}")
        if not (math.isfinite(self.step_size) and 0 < self.step_size <= 1):
            raise StylizeError(
                f"step size must be greater than 0 and at most 1 (pixels span [-1, 1]), "
                f"got {self.step_size:g}"
            )
        for name, top in LIMITS.items():
            if getattr(self, name) > top:
                raise StylizeError(f"{name} must be at most {top}, got {getattr(self, name)}")
        if self.seed < 0:
            raise StylizeError(f"seed must be 0 or more, got {self.seed}")
        if self.tile < MIN_TILE:
            raise StylizeError(f"tile must be at least {MIN_TILE} px, got {self.tile}")
        if not 0 <= self.seed < 2**63:
            raise StylizeError(f"seed must be in 0..{2**63 - 1}, got {self.seed}")
        if self.jitter < 0:
            raise StylizeError(f"jitter must be 0 or more, got {self.jitter}")
        checks = (
            ("reduction", self.reduction, ("mean", "mean_square")),
            ("gradient normalization", self.grad_norm, ("std", "mean_abs")),
            ("start", self.start, ("image", "noise")),
            ("precision", self.precision, ("fp32", "tf32", "bf16", "fp16")),
        )
        for what, value, accepted in checks:
            if value not in accepted:
                raise StylizeError(f"unknown {what} '{value}'; accepted: {', '.join(accepted)}")
        if self.max_pixels is not None:
            check_dream_budget(self.max_pixels)
        return self

    def fit_image(self, image: Image.Image, name: str) -> Image.Image:
        """``image`` within this dream's pixel budget (downscaled with ``fit``), or a
        one-line :class:`StylizeError` giving its size, the budget and the options."""
        return fit_to_budget(image, self.max_pixels or DREAM_MAX_PIXELS, self.fit, name)


def _preset(**values) -> DreamConfig:
    return DreamConfig(**values)


# Why each value: docs/engine.md, "Presets".
PRESETS: dict[str, DreamConfig] = {
    # Paper Fig. 10-15: one layer, one channel, single scale. The paper names no
    # channel; mixed4 is the middle of mixed0..mixed10 (object parts rather than edges),
    # channel 97 draws a clear repeating motif. Steps/step as the TF tutorial it follows.
    "paper-single-channel": _preset(
        layers=(("mixed4", 1.0),), channel=97, octaves=1, steps=100, step_size=0.01
    ),
    # Paper Fig. 16-18: several layers, all channels, each layer's loss normalized
    # (mean): the TF tutorial's mixed3 + mixed5 at a single scale.
    "paper-multilayer": _preset(
        layers=(("mixed3", 1.0), ("mixed5", 1.0)), octaves=1, steps=100, step_size=0.01
    ),
    # Paper Fig. 19-21: the same objective optimized over shrinking scales (ratio 1.3,
    # five scales, 50 steps each) and carried back up to full size.
    "paper-octave": _preset(
        layers=(("mixed3", 1.0), ("mixed5", 1.0)), octaves=5, octave_scale=1.3, steps=50
    ),
    # TF tutorial (tiled octave version): 5 octaves × 1.3, 100 steps, step 0.01 / std(g).
    "tf-tutorial": _preset(
        layers=(("mixed3", 1.0), ("mixed5", 1.0)), octaves=5, octave_scale=1.3, steps=100
    ),
    # keras-io deep_dream.py: weighted mixed4..7, mean of squares, 3 × 1.4, 20 steps,
    # step 0.01 / mean|g|; no jitter (tile borders still roll).
    "keras-example": _preset(
        layers=(("mixed4", 1.0), ("mixed5", 1.5), ("mixed6", 2.0), ("mixed7", 2.5)),
        reduction="mean_square",
        octaves=3,
        octave_scale=1.4,
        steps=20,
        step_size=0.01,
        grad_norm="mean_abs",
        jitter=0,
    ),
    # Google's 2015 Caffe notebook (GoogLeNet inception_4c → InceptionV3's mid layers
    # mixed4 + mixed5): L2 objective, 4 octaves × 1.4, 10 steps, step 1.5 on 0..255
    # (0.012 on [-1, 1]) / mean|g|, jitter 32.
    "classic": _preset(
        layers=(("mixed4", 1.0), ("mixed5", 1.0)),
        reduction="mean_square",
        octaves=4,
        octave_scale=1.4,
        steps=10,
        step_size=0.012,
        grad_norm="mean_abs",
        jitter=32,
    ),
    # Previews and tests: a shallow layer, two small octaves, few steps.
    "fast": _preset(
        layers=(("mixed3", 1.0),), octaves=2, octave_scale=1.4, steps=5, step_size=0.02
    ),
}


def get_preset(name: str) -> DreamConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise StylizeError(f"unknown preset '{name}'; presets: {', '.join(PRESETS)}") from None


def parse_layers(text: str) -> tuple[tuple[str, float], ...]:
    """``mixed3,mixed5`` or ``mixed4=1.0,mixed5=1.5`` → ``(("mixed4", 1.0), …)``."""
    layers = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition("=")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise StylizeError(f"layer weight '{weight}' for {name} is not a number") from None
        layers.append((name.strip(), value))
    if not layers:
        raise StylizeError(f"no layers in '{text}'; e.g. mixed3,mixed5 or mixed4=1.0,mixed5=1.5")
    return tuple(layers)


def parse_channel(text: str) -> tuple[str, int]:
    """``mixed4:97`` → ``("mixed4", 97)``."""
    name, _, channel = text.partition(":")
    if not channel.strip().isdigit():
        raise StylizeError(f"channel must look like LAYER:INDEX, e.g. mixed4:97 (got '{text}')")
    return name.strip(), int(channel)
