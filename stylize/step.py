"""One DeepDream step, as traced TensorFlow functions on device tensors.

A step of one image is three calls, none of which leaves the device:

1. :func:`make_split` — roll the image by a random offset and cut it into tiles
   (:class:`~stylize.tiling.TileLayout`), one tensor per tile shape;
2. :func:`make_gradient` — the objective's gradient for a batch of tiles of one shape,
   which may come from several images (``Engine.dream_many`` concatenates them);
3. :func:`make_update` — join the tiles' gradients, roll back, normalize over the whole
   image (fp32), add ``step_size ×`` the normalized gradient, clip to [-1, 1].

The gradient is traced once per objective and precision (its input signature is
shape-free: never per image, octave or tile shape); split and update hold no network
and are traced once per tile layout, a few milliseconds each. The image itself stays on
the device from the start of an octave to its end.
"""

from __future__ import annotations

from collections.abc import Callable

from stylize.config import DreamConfig
from stylize.network import InceptionV3Features
from stylize.tiling import TileLayout


def tile_objective(net: InceptionV3Features, config: DreamConfig) -> Callable:
    """The objective of each tile of a batch ``(n, th, tw, 3)`` → ``(n,)`` float32.

    Layers: each layer's activation (or its square, ``mean_square``; or one channel)
    averaged over the tile, weighted and summed; or one class logit. Activations may be
    bf16/fp16: they are cast to float32 before they are reduced.
    """
    import tensorflow as tf

    deepest, layers, channel = config.deepest, config.objective_layers, config.channel
    class_index, reduction = config.class_index, config.reduction

    def objective(tiles):
        outputs = net(tiles, deepest)
        if class_index is not None:
            return outputs["logits"][:, class_index]
        total = 0.0
        for name, weight in layers:
            act = tf.cast(outputs[name], tf.float32)
            if channel is not None:
                act = act[..., channel]
            if reduction == "mean_square":
                act = tf.square(act)
            total += weight * tf.reduce_mean(act, axis=list(range(1, act.shape.rank)))
        return total

    return objective


_TILES = "tiles"


def make_gradient(objective: Callable):
    """``gradient(tiles)``: d(objective × tile area)/d(pixels), float32, same shape.

    Each tile's objective is a mean over its own positions; multiplying by its area puts
    the gradients of a 139 px and a 523 px tile of one image on the same scale.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, _TILES)])
    def gradient(tiles):
        area = tf.cast(tf.shape(tiles)[1] * tf.shape(tiles)[2], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(tiles)
            total = tf.reduce_sum(objective(tiles)) * area
        return tape.gradient(total, tiles)

    return gradient


def make_evaluate(objective: Callable):
    """``evaluate(tiles)``: each tile's objective, no gradient (scores a whole image)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, _TILES)])
    def evaluate(tiles):
        return objective(tiles)

    return evaluate


def _image_specs():
    import tensorflow as tf

    return tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([2], tf.int32)


def make_split(layout: TileLayout):
    """``split(image, shift)``: the rolled image's tiles, one tensor per layout shape."""
    import tensorflow as tf

    @tf.function(input_signature=_image_specs())
    def split(image, shift):
        return layout.split(tf.roll(image, shift, axis=[0, 1]))

    return split


def make_update(layout: TileLayout, grad_norm: str):
    """``update(image, shift, grads, step_size)`` → ``(new image, gradient was finite)``.

    Normalization (``std`` or ``mean_abs`` over the image's own pixels, padding
    excluded) and the update are float32 whatever the network's precision.
    """
    import tensorflow as tf

    specs = _image_specs()
    grads_spec = tuple(tf.TensorSpec([None, th, tw, 3], tf.float32) for th, tw in layout.shapes)

    @tf.function(input_signature=[*specs, grads_spec, tf.TensorSpec([], tf.float32)])
    def update(image, shift, grads, step_size):
        shape = tf.shape(image)
        grad = tf.roll(layout.join(grads, shape[0], shape[1]), -shift, axis=[0, 1])
        if grad_norm == "std":
            scale = tf.math.reduce_std(grad) + 1e-8
        else:
            scale = tf.maximum(tf.reduce_mean(tf.abs(grad)), 1e-8)
        finite = tf.math.is_finite(scale)
        return tf.clip_by_value(image + step_size * grad / scale, -1.0, 1.0), finite

    return update
