"""A fingerprint that tells the real ImageNet weights from anything else.

Per-layer statistics (mean and standard deviation of ``mixed0``..``mixed10``) of the
network on a fixed real photo (scikit-image's ``chelsea``, every second pixel) were
recorded once from the pinned 2015 archive into ``stylize/data/fingerprint.json``.
Converted weights must reproduce them to 0.1 %; a misordered, mis-transposed or random
set of weights misses by far more.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stylize.network import LAYER_NAMES, InceptionV3Features

FINGERPRINT_FILE = Path(__file__).with_name("data") / "fingerprint.json"
RELATIVE_TOLERANCE = 1e-3


def fingerprint_input() -> np.ndarray:
    """The fixed input: ``chelsea`` subsampled to 150×226, scaled to [-1, 1], batch of 1."""
    from skimage import data

    pixels = data.chelsea()[::2, ::2].astype(np.float32)
    return (pixels / 127.5 - 1.0)[None]


def compute_fingerprint(network: InceptionV3Features) -> dict[str, list[float]]:
    import tensorflow as tf

    outputs = network(tf.constant(fingerprint_input()), LAYER_NAMES[-1])
    stats = {}
    for name in LAYER_NAMES:
        act = tf.cast(outputs[name], tf.float32).numpy().astype(np.float64)
        stats[name] = [float(act.mean()), float(act.std())]
    return stats


def load_reference() -> dict:
    return json.loads(FINGERPRINT_FILE.read_text())


def fingerprint_mismatches(network: InceptionV3Features) -> list[str]:
    """Layers whose statistics differ from the reference (empty: the real weights)."""
    reference = load_reference()["layers"]
    actual = compute_fingerprint(network)
    problems = []
    for name in LAYER_NAMES:
        expected, got = np.array(reference[name]), np.array(actual[name])
        if not np.allclose(got, expected, rtol=RELATIVE_TOLERANCE, atol=0):
            problems.append(f"{name}: mean/std {got.round(6).tolist()} != {expected.tolist()}")
    return problems


def record(network: InceptionV3Features, sha256: str) -> None:
    """Write the reference (run once, from the pinned archive)."""
    payload = {
        "about": "mixed0..mixed10 [mean, std] on skimage chelsea[::2, ::2] in [-1, 1]",
        "sha256": sha256,
        "layers": compute_fingerprint(network),
    }
    FINGERPRINT_FILE.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
