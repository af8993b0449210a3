"""Every colour mode Pillow reads is dreamed as the picture it holds, not as a blank.

Each case writes a real photo to a real file in that mode (16-bit PNGs are encoded
here, since Pillow cannot write 16-bit colour), reads it back as the CLI does, dreams it
a few steps on the real weights, and checks that the result still looks like the photo.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylize.config import DreamConfig
from stylize.image_io import read_image, to_array, write_image
from tests.weights_fixture import photo

DREAM = DreamConfig(layers=(("mixed3", 1.0),), octaves=1, steps=3, step_size=0.01)


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA) from a uint16 array."""
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _wide(rgb: Image.Image) -> np.ndarray:
    return np.asarray(rgb, dtype=np.uint16) * 257


def _grey(rgb: Image.Image) -> np.ndarray:
    return np.asarray(rgb.convert("L"), dtype=np.float64)


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _palette_with_transparency(rgb: Image.Image) -> bytes:
    image = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    return _save(image, "PNG", transparency=0)


def _opaque(array: np.ndarray, top: int) -> np.ndarray:
    return np.full(array.shape[:2], top, dtype=array.dtype)


CASES: dict[str, tuple[str, Callable[[Image.Image], bytes]]] = {
    "16-bit grey PNG (I;16)": (".png", lambda im: png16(_wide(im.convert("L")))),
    "16-bit RGB PNG": (".png", lambda im: png16(_wide(im))),
    "16-bit grey+alpha PNG": (
        ".png",
        lambda im: png16(np.dstack([_wide(im.convert("L")), _opaque(_wide(im), 65535)])),
    ),
    "16-bit RGBA PNG": (
        ".png",
        lambda im: png16(np.dstack([_wide(im), _opaque(_wide(im), 65535)])),
    ),
    "I;16 TIFF": (".tif", lambda im: _save(Image.fromarray(_wide(im.convert("L"))), "TIFF")),
    "I (32-bit int holding 16-bit data) TIFF": (
        ".tif",
        lambda im: _save(Image.fromarray(_wide(im.convert("L")).astype(np.int32)), "TIFF"),
    ),
    "I (32-bit int holding 8-bit data) TIFF": (".tif", lambda im: _save(im.convert("I"), "TIFF")),
    "F (float in 0..1) TIFF": (
        ".tif",
        lambda im: _save(Image.fromarray(_grey(im).astype(np.float32) / 255.0), "TIFF"),
    ),
    "F (float in 0..255) TIFF": (".tif", lambda im: _save(im.convert("F"), "TIFF")),
    "P with transparency PNG": (".png", _palette_with_transparency),
    "CMYK JPEG": (".jpg", lambda im: _save(im.convert("CMYK"), "JPEG", quality=95)),
    "CMYK TIFF": (".tif", lambda im: _save(im.convert("CMYK"), "TIFF")),
    "LA PNG": (".png", lambda im: _save(im.convert("LA"), "PNG")),
    "1 (bilevel) PNG": (".png", lambda im: _save(im.convert("1"), "PNG")),
    "YCbCr TIFF": (".tif", lambda im: _save(im.convert("YCbCr"), "TIFF")),
    "LAB TIFF": (".tif", lambda im: _save(im.convert("LAB"), "TIFF")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_mode_reads_as_its_picture(case: str, tmp_path: Path) -> None:
    """The engine's input matches the photo within a few grey levels, seen at 1/8 scale
    (a bilevel image is dithered, so only its local averages can match)."""
    original = photo("chelsea", 160)
    suffix, encode = CASES[case]
    path = tmp_path / f"in{suffix}"
    path.write_bytes(encode(original))
    rgb = to_array(read_image(path))[0]
    reference = to_array(original.convert("L") if _is_grey(case) else original)[0]
    assert np.abs(_coarse(rgb) - _coarse(reference)).mean() < 0.06, case


def _coarse(rgb: np.ndarray) -> np.ndarray:
    """Box-averaged over 8×8 pixels, per channel."""
    h, w = (rgb.shape[0] // 8) * 8, (rgb.shape[1] // 8) * 8
    return rgb[:h, :w].reshape(h // 8, 8, w // 8, 8, -1).mean(axis=(1, 3))


def _is_grey(case: str) -> bool:
    return any(word in case for word in ("grey", "I;16", "I (", "F (", "LA PNG", "1 ("))


@pytest.mark.parametrize("case", list(CASES))
def test_every_mode_dreams_into_an_image_that_resembles_it(
    engine, case: str, tmp_path: Path
) -> None:
    """A short dream of each mode's file keeps the photo: its grey levels correlate with
    the input's, and it is neither blank nor saturated."""
    original = photo("chelsea", 160)
    suffix, encode = CASES[case]
    path = tmp_path / f"in{suffix}"
    path.write_bytes(encode(original))
    result = engine.dream(read_image(path), dataclasses.replace(DREAM))
    out = tmp_path / "out.png"
    write_image(result.image, out)
    dreamed = _coarse(_grey(Image.open(out).convert("RGB"))[..., None])
    source = _coarse(_grey(original)[..., None])
    assert 40 < dreamed.mean() < 215, f"{case}: mean grey {dreamed.mean():.0f}"
    assert dreamed.std() > 20, case
    assert np.corrcoef(dreamed.ravel(), source.ravel())[0, 1] > 0.9, case
