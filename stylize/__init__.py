"""DeepDream on InceptionV3 (ImageNet): weights, feature network, objectives, octaves, tiling.

Library entry points (the CLI and the flows use these)::

    from stylize import get_preset, load_engine
    engine = load_engine()                      # built once per process
    result = engine.dream(image, get_preset("classic"))   # a PIL image or an h×w×3 array
    result.image, result.objective_before, result.objective_after
    results = engine.dream_many(images, get_preset("classic"))  # tiles share network calls

TensorFlow is imported lazily: importing :mod:`stylize` stays cheap.
"""

from stylize.config import (
    ENGINE_VERSION,
    PRESETS,
    PRESETS_VERSION,
    DreamConfig,
    get_preset,
    parse_channel,
    parse_layers,
)
from stylize.engine import DreamResult, Engine, load_engine
from stylize.network import LAYER_CHANNELS, LAYER_NAMES
from stylize.weights import WeightsInfo

__all__ = [
    "ENGINE_VERSION",
    "LAYER_CHANNELS",
    "LAYER_NAMES",
    "PRESETS",
    "PRESETS_VERSION",
    "DreamConfig",
    "DreamResult",
    "Engine",
    "WeightsInfo",
    "get_preset",
    "load_engine",
    "parse_channel",
    "parse_layers",
]
