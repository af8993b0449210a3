"""Tiles from a small fixed set of shapes, so tiles of many images share network calls.

InceptionV3 feeds every pixel of a side of ``n`` px to its output only when
``n ≡ 11 (mod 32)`` (:func:`seen_size`); any other side leaves its last rows or columns
without a gradient, a seam at every tile border. Tile sides are therefore taken from
:func:`tile_sizes`: five seen sizes from the tile down to its quarter (523, 395, 267,
203 and 139 px for the default tile of 512). Every octave of every image is cut along
each axis into equal tiles of one of those sides, the one that covers the axis with
the fewest padded pixels (:func:`axis_tiles`; a 300 px side becomes 2 × 203 = 406 px,
a 110 px side one 139 px tile, never a 523 px one), so a dream uses at most 25 tile
shapes whatever the image sizes, one per image octave: a batch of tiles can mix
images, and the network traces once for all of them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from stylize.network import MIN_INPUT_SIZE


def seen_size(n: int) -> int:
    """The smallest size ≥ ``n`` of which InceptionV3 uses every pixel.

    Its stem and reduction blocks are stride-2 'valid' convolutions and pools: a side of
    ``n`` px feeds every pixel to the network only when ``n ≡ 11 (mod 32)`` (299 is one).
    """
    return n + (11 - n) % 32


def tile_sizes(tile: int) -> tuple[int, ...]:
    """The fixed tile sides for a largest tile of ``tile`` px, largest first.

    The seen sizes of ``tile`` × 1, 3/4, 1/2, 3/8 and 1/4 that are at least 75 px
    (InceptionV3's smallest input): 523, 395, 267, 203, 139 for 512. The in-between
    sides keep padding low (a 151 px octave is one 203 px tile, not 267) and give a
    1024 px photo's octaves the tiles they had before (395, 523, 2 × 395, 2 × 523).
    """
    sizes: list[int] = []
    for fraction in (1, 3 / 4, 1 / 2, 3 / 8, 1 / 4):
        side = seen_size(math.ceil(tile * fraction))
        if side >= MIN_INPUT_SIZE and side not in sizes:
            sizes.append(side)
    return tuple(sizes)


@functools.lru_cache(maxsize=4096)
def axis_tiles(size: int, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """Equal tiles of one of ``sizes`` that cover ``size`` px with the fewest padded pixels.

    For each side, as many tiles as it takes; the smallest total wins, then the fewest
    tiles (larger tiles see more context and leave fewer borders). Equal tiles keep all
    of an image's tiles one shape, so they go through the network in one call.
    """
    side = min(sizes, key=lambda t: (math.ceil(size / t) * t, math.ceil(size / t)))
    return (side,) * math.ceil(size / side)


@dataclass(frozen=True)
class TileLayout:
    """Rows of heights ``rows`` × columns of widths ``cols``, covering an image of at most
    ``sum(rows) × sum(cols)`` px (the bottom/right edge is padded by reflection).

    A layout does not depend on the exact image size, only on its tiles: images of
    different sizes with the same layout share the traced split and update functions.
    """

    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def for_image(cls, h: int, w: int, tile: int) -> TileLayout:
        sizes = tile_sizes(tile)
        return cls(axis_tiles(h, sizes), axis_tiles(w, sizes))

    @property
    def padded(self) -> tuple[int, int]:
        return sum(self.rows), sum(self.cols)

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def tiles(self) -> list[tuple[int, int, int, int]]:
        """``(y, x, th, tw)`` of every tile, row by row."""
        out = []
        y = 0
        for th in self.rows:
            x = 0
            for tw in self.cols:
                out.append((y, x, th, tw))
                x += tw
            y += th
        return out

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """The distinct tile shapes, in a fixed order (the groups :meth:`split` returns)."""
        return tuple(sorted({(th, tw) for _, _, th, tw in self.tiles}, reverse=True))

    def split(self, image):
        """Tiles of an ``h × w × 3`` tensor, one ``(k, th, tw, 3)`` tensor per shape.

        Works eagerly and inside a ``tf.function`` whose image size is unknown: the
        padding is computed from the image's dynamic shape, the tiles' shapes are static.
        """
        import tensorflow as tf

        height, width = self.padded
        shape = tf.shape(image)
        pad = [[0, height - shape[0]], [0, width - shape[1]], [0, 0]]
        padded = tf.ensure_shape(tf.pad(image, pad, mode="REFLECT"), [height, width, 3])
        groups: dict[tuple[int, int], list] = {s: [] for s in self.shapes}
        for y, x, th, tw in self.tiles:
            groups[(th, tw)].append(padded[y : y + th, x : x + tw])
        return tuple(tf.stack(groups[s]) for s in self.shapes)

    def join(self, groups, h, w):
        """Inverse of :meth:`split`, cropped to ``h × w`` (tensors or ints)."""
        import tensorflow as tf

        index = {s: 0 for s in self.shapes}
        by_shape = dict(zip(self.shapes, groups, strict=True))
        rows, tiles = [], iter(self.tiles)
        for _ in self.rows:
            row = []
            for _ in self.cols:
                _, _, th, tw = next(tiles)
                row.append(by_shape[(th, tw)][index[(th, tw)]])
                index[(th, tw)] += 1
            rows.append(tf.concat(row, axis=1))
        return tf.concat(rows, axis=0)[:h, :w]

    def padded_pixels(self, h: int, w: int) -> int:
        """Pixels the network computes that are not the image's (padding)."""
        height, width = self.padded
        return height * width - h * w
