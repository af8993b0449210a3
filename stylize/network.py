"""InceptionV3's feature extractor as plain TensorFlow ops on frozen, folded weights.

The weights are frozen, so each convolution's batch norm is folded into the
convolution itself (``kernel * s`` and a bias ``beta - mean * s`` with
``s = 1 / sqrt(var + eps)``), and the 1×1 convolutions of a block that read the same
input run as one wider convolution, then split. The graph is the one of
``keras.applications.InceptionV3`` (same layer names ``mixed0``..``mixed10``), evaluated
only as deep as the objective needs.

Convolutions are listed in the order Keras *creates* them (``conv2d``, ``conv2d_1``, …),
which is also the order of the 2015 TorchScript archive; :data:`CONV_SHAPES` pins every
kernel shape so that a misordered file fails loudly instead of dreaming noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

LAYER_NAMES: tuple[str, ...] = tuple(f"mixed{i}" for i in range(11))
LAYER_CHANNELS: dict[str, int] = {
    "mixed0": 256,
    "mixed1": 288,
    "mixed2": 288,
    "mixed3": 768,
    **{f"mixed{i}": 768 for i in range(4, 8)},
    "mixed8": 1280,
    "mixed9": 2048,
    "mixed10": 2048,
}
BN_EPSILON = 1e-3
NUM_CLASSES = 1000
MIN_INPUT_SIZE = 75  # InceptionV3 without top needs at least 75×75 pixels

PoolKind = Literal["avg", "max"]


def _conv_shapes() -> list[tuple[int, int, int, int]]:
    """HWIO kernel shapes of the 94 convolutions, in Keras' creation order."""
    shapes = [(3, 3, 3, 32), (3, 3, 32, 32), (3, 3, 32, 64), (1, 1, 64, 80), (3, 3, 80, 192)]
    cin = 192
    for pool_out in (32, 64, 64):  # mixed0..2
        shapes += [(1, 1, cin, 64), (1, 1, cin, 48), (5, 5, 48, 64)]
        shapes += [(1, 1, cin, 64), (3, 3, 64, 96), (3, 3, 96, 96), (1, 1, cin, pool_out)]
        cin = 64 + 64 + 96 + pool_out
    shapes += [(3, 3, cin, 384), (1, 1, cin, 64), (3, 3, 64, 96), (3, 3, 96, 96)]  # mixed3
    cin = 768
    for c in (128, 160, 160, 192):  # mixed4..7
        shapes += [(1, 1, cin, 192), (1, 1, cin, c), (1, 7, c, c), (7, 1, c, 192)]
        shapes += [(1, 1, cin, c), (7, 1, c, c), (1, 7, c, c), (7, 1, c, c), (1, 7, c, 192)]
        shapes += [(1, 1, cin, 192)]
    shapes += [(1, 1, cin, 192), (3, 3, 192, 320)]  # mixed8
    shapes += [(1, 1, cin, 192), (1, 7, 192, 192), (7, 1, 192, 192), (3, 3, 192, 192)]
    cin = 1280
    for _ in range(2):  # mixed9, mixed10
        shapes += [(1, 1, cin, 320), (1, 1, cin, 384), (1, 3, 384, 384), (3, 1, 384, 384)]
        shapes += [(1, 1, cin, 448), (3, 3, 448, 384), (1, 3, 384, 384), (3, 1, 384, 384)]
        shapes += [(1, 1, cin, 192)]
        cin = 2048
    return shapes


CONV_SHAPES: tuple[tuple[int, int, int, int], ...] = tuple(_conv_shapes())


@dataclass(frozen=True)
class ConvBN:
    """One convolution (HWIO kernel, no bias) and its batch norm without gamma."""

    kernel: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """The kernel and bias of the equivalent convolution with the batch norm folded in."""
        scale = 1.0 / np.sqrt(self.var.astype(np.float64) + BN_EPSILON)
        kernel = self.kernel.astype(np.float64) * scale
        bias = self.beta.astype(np.float64) - self.mean.astype(np.float64) * scale
        return kernel.astype(np.float32), bias.astype(np.float32)


def check_shapes(convs: list[ConvBN]) -> None:
    """Raise ValueError unless ``convs`` has InceptionV3's 94 kernels in creation order."""
    if len(convs) != len(CONV_SHAPES):
        raise ValueError(f"expected {len(CONV_SHAPES)} convolutions, got {len(convs)}")
    for index, (conv, shape) in enumerate(zip(convs, CONV_SHAPES, strict=True)):
        cout = shape[3]
        got = (conv.kernel.shape, conv.beta.shape, conv.mean.shape, conv.var.shape)
        if got != (shape, (cout,), (cout,), (cout,)):
            raise ValueError(f"convolution {index}: expected kernel {shape}, got {got}")


# Indices (within a block) of the 1×1 convolutions that read the block's input.
_FUSED_1X1 = {"A": (0, 1, 3), "C": (0, 1, 4), "D": (0, 2), "E": (0, 1, 4)}
_BLOCKS = ["A", "A", "A", "B", "C", "C", "C", "C", "D", "E", "E"]
_BLOCK_SIZES = {"A": 7, "B": 4, "C": 10, "D": 6, "E": 9}


class InceptionV3Features:
    """Activations of ``mixed0``..``mixed10`` (and class logits when a classifier is given)."""

    def __init__(
        self,
        convs: list[ConvBN],
        last_block_pool: PoolKind = "avg",
        classifier: tuple[np.ndarray, np.ndarray] | None = None,
        dtype: str = "float32",
    ) -> None:
        import tensorflow as tf

        check_shapes(convs)
        self.dtype = tf.dtypes.as_dtype(dtype)
        self.last_block_pool = last_block_pool
        folded = [c.folded() for c in convs]
        self._stem = [self._const(k, b) for k, b in folded[:5]]
        self._blocks: list[tuple[str, dict[int, tuple], tuple | None]] = []
        start = 5
        for kind in _BLOCKS:
            size = _BLOCK_SIZES[kind]
            block = folded[start : start + size]
            start += size
            fused_ids = _FUSED_1X1.get(kind, ())
            fused = None
            if fused_ids:
                kernel = np.concatenate([block[i][0] for i in fused_ids], axis=3)
                bias = np.concatenate([block[i][1] for i in fused_ids])
                splits = [block[i][0].shape[3] for i in fused_ids]
                fused = (*self._const(kernel, bias), splits)
            rest = {i: self._const(*block[i]) for i in range(size) if i not in fused_ids}
            self._blocks.append((kind, rest, fused))
        self.classifier = None
        if classifier is not None:
            kernel, bias = classifier
            self.classifier = (tf.constant(kernel, tf.float32), tf.constant(bias, tf.float32))

    def _const(self, kernel: np.ndarray, bias: np.ndarray) -> tuple:
        import tensorflow as tf

        return tf.constant(kernel, self.dtype), tf.constant(bias, self.dtype)

    @property
    def has_classifier(self) -> bool:
        return self.classifier is not None

    def __call__(self, x, upto: str) -> dict:
        """Run up to layer ``upto`` (a mixed layer, or ``"logits"``); return what was computed.

        ``x`` is a float batch NHWC in [-1, 1]; outputs are in the network's dtype, logits
        in float32.
        """
        import tensorflow as tf

        want_logits = upto == "logits"
        last = 10 if want_logits else LAYER_NAMES.index(upto)
        x = tf.cast(x, self.dtype)
        for i, (k, b) in enumerate(self._stem):
            padding = "VALID" if i in (0, 1, 3, 4) else "SAME"
            x = _conv(x, k, b, stride=2 if i == 0 else 1, padding=padding)
            if i in (2, 4):
                x = tf.nn.max_pool2d(x, 3, 2, "VALID")
        outputs = {}
        for index, (kind, convs, fused) in enumerate(self._blocks):
            pool = self.last_block_pool if index == 10 else "avg"
            x = _BLOCK_FUNCS[kind](x, convs, fused, pool)
            outputs[LAYER_NAMES[index]] = x
            if index == last:
                break
        if want_logits:
            kernel, bias = self.classifier
            pooled = tf.reduce_mean(tf.cast(x, tf.float32), axis=(1, 2))
            outputs["logits"] = tf.matmul(pooled, kernel) + bias
        return outputs


def _conv(x, kernel, bias, stride: int = 1, padding: str = "SAME"):
    import tensorflow as tf

    return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, stride, padding), bias))


def _fused_1x1(x, fused):
    import tensorflow as tf

    kernel, bias, splits = fused
    return tf.split(_conv(x, kernel, bias), splits, axis=3)


def _pool_same(x, kind: str):
    import tensorflow as tf

    if kind == "max":
        return tf.nn.max_pool2d(x, 3, 1, "SAME")
    return tf.nn.avg_pool2d(x, 3, 1, "SAME")  # TF averages over valid pixels only


def _block_a(x, c, fused, pool):
    import tensorflow as tf

    b1, b5, b3 = _fused_1x1(x, fused)
    b5 = _conv(b5, *c[2])
    b3 = _conv(_conv(b3, *c[4]), *c[5])
    bp = _conv(_pool_same(x, pool), *c[6])
    return tf.concat([b1, b5, b3, bp], axis=3)


def _block_b(x, c, fused, pool):
    import tensorflow as tf

    b3 = _conv(x, *c[0], stride=2, padding="VALID")
    bd = _conv(_conv(_conv(x, *c[1]), *c[2]), *c[3], stride=2, padding="VALID")
    bp = tf.nn.max_pool2d(x, 3, 2, "VALID")
    return tf.concat([b3, bd, bp], axis=3)


def _block_c(x, c, fused, pool):
    import tensorflow as tf

    b1, b7, bd = _fused_1x1(x, fused)
    b7 = _conv(_conv(b7, *c[2]), *c[3])
    for i in (5, 6, 7, 8):
        bd = _conv(bd, *c[i])
    bp = _conv(_pool_same(x, pool), *c[9])
    return tf.concat([b1, b7, bd, bp], axis=3)


def _block_d(x, c, fused, pool):
    import tensorflow as tf

    b3, b7 = _fused_1x1(x, fused)
    b3 = _conv(b3, *c[1], stride=2, padding="VALID")
    b7 = _conv(_conv(b7, *c[3]), *c[4])
    b7 = _conv(b7, *c[5], stride=2, padding="VALID")
    bp = tf.nn.max_pool2d(x, 3, 2, "VALID")
    return tf.concat([b3, b7, bp], axis=3)


def _block_e(x, c, fused, pool):
    import tensorflow as tf

    b1, b3, bd = _fused_1x1(x, fused)
    b3 = tf.concat([_conv(b3, *c[2]), _conv(b3, *c[3])], axis=3)
    bd = _conv(bd, *c[5])
    bd = tf.concat([_conv(bd, *c[6]), _conv(bd, *c[7])], axis=3)
    bp = _conv(_pool_same(x, pool), *c[8])
    return tf.concat([b1, b3, bd, bp], axis=3)


_BLOCK_FUNCS = {"A": _block_a, "B": _block_b, "C": _block_c, "D": _block_d, "E": _block_e}
