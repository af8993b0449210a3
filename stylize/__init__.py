"""DeepDream on InceptionV3 (ImageNet): weights, feature network, objectives, octaves, tiling.

For a notebook, one call (a path, a PIL image or a NumPy array; overrides as in
``dreamcrawl dream``)::

    import stylize
    result = stylize.dream("cat.jpg", preset="classic", steps=5, layers="mixed4,mixed5")
    result.image.save("cat-dream.jpg")

The CLI and the flows build a :class:`DreamParams` (the typed dream parameters) and run
``load_engine().dream(image, params.config(preset))``; ``dream_many(images, config)``
dreams several images together (their tiles share network calls).

TensorFlow is imported lazily: importing :mod:`stylize` stays cheap.
"""

from stylize.api import as_image, dream
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
from stylize.errors import StylizeError
from stylize.network import LAYER_CHANNELS, LAYER_NAMES
from stylize.params import DreamParams, Layer, Preset
from stylize.weights import WeightsInfo

__all__ = [
    "ENGINE_VERSION",
    "LAYER_CHANNELS",
    "LAYER_NAMES",
    "PRESETS",
    "PRESETS_VERSION",
    "DreamConfig",
    "DreamParams",
    "DreamResult",
    "Engine",
    "Layer",
    "Preset",
    "StylizeError",
    "WeightsInfo",
    "as_image",
    "dream",
    "get_preset",
    "load_engine",
    "parse_channel",
    "parse_layers",
]
