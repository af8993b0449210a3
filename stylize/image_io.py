"""Image files in and out: EXIF orientation applied on read, atomic writes.

The engine works on float RGB in [-1, 1]; these helpers split off and re-attach the
alpha channel and the colour mode so a dream has its input's size, orientation, mode
and transparency.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stylize.errors import StylizeError

# Output formats by file suffix.
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
KEPT_MODES = ("RGB", "RGBA", "L", "LA")
# Grey modes wider than 8 bits: Pillow's convert() clips them at 255 (a white image).
WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
# Modes whose convert("RGB") is missing or wrong, and the mode to go through instead.
VIA = {"La": "LA", "RGBa": "RGBA", "1": "L"}


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> Image.Image:
    """Open and decode an image file, with its EXIF orientation applied.

    A file of more than ``max_pixels`` (the decode ceiling) is refused from its header,
    before any pixel is decoded, so a decompression bomb never expands.
    """
    path = Path(path)
    if not path.is_file():
        raise StylizeError(f"input image not found: {path}")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if max_pixels is not None and width * height > max_pixels:
                raise StylizeError(
                    f"cannot read {path}: {width}×{height} is {width * height} pixels, above "
                    f"the {max_pixels} pixels dreamcrawl decodes at all (a decompression bomb?)"
                )
            image = ImageOps.exif_transpose(opened)
            image.load()
    except StylizeError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, checked at open
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        count = pixels.group(1) if pixels else "too many"
        raise StylizeError(
            f"cannot read {path}: {count} pixels, above the "
            f"{max_pixels or Image.MAX_IMAGE_PIXELS} pixels dreamcrawl decodes at all "
            "(a decompression bomb?)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise StylizeError(f"cannot read {path}: not a readable image ({reason})") from None
    return image


def fit_to_budget(image: Image.Image, max_pixels: int, fit: bool, name: str) -> Image.Image:
    """``image`` if it has at most ``max_pixels``; downscaled to fit (aspect kept) when
    ``fit``; otherwise :class:`StylizeError` with its size, the budget and the options."""
    width, height = image.size
    if width * height <= max_pixels:
        return image
    if not fit:
        raise StylizeError(
            f"{name} is {width}×{height} ({width * height} pixels), above the dream budget "
            f"of {max_pixels} pixels; pass --fit to downscale it to fit, or raise --max-pixels"
        )
    scale = math.sqrt(max_pixels / (width * height))
    size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def output_format(path: str | os.PathLike) -> str:
    """The Pillow format for an output path, or :class:`StylizeError` listing the accepted ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise StylizeError(
            f"cannot write '{path}': unknown image type '{suffix or '(none)'}'; "
            f"accepted: {', '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def check_writable(path: str | os.PathLike) -> None:
    """Fail early (before a long dream) when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise StylizeError(f"cannot write '{path}': it is a folder")
    output_format(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise StylizeError(f"cannot write '{path}': folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StylizeError(f"cannot write '{path}': permission denied")


def write_image(image: Image.Image, path: str | os.PathLike) -> None:
    """Write ``image`` to ``path`` through a temporary file and a rename (all or nothing)."""
    path = Path(path)
    fmt = output_format(path)
    check_writable(path)
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB" if image.mode != "LA" else "L")  # JPEG has no alpha
    options: dict = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~current_umask())  # mkstemp's 0600 is for scratch files
        with os.fdopen(handle, "wb") as out:
            image.save(out, format=fmt, **options)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` in an 8-bit mode that keeps its picture.

    16-bit and 32-bit grey are scaled, not clipped: ``I;16`` by its full range
    (65535 → 255); ``I`` as 8-bit data if it fits, else as 16-bit, else by its own
    range; ``F`` as 0..1 or 0..255 data if it fits, else by its own range (NaN → 0).
    Premultiplied and bilevel modes go through their plain counterpart; the rest
    (CMYK, YCbCr, LAB, HSV, P…) convert correctly with Pillow's own conversions.
    """
    if image.mode in WIDE_GREY_MODES:
        return Image.fromarray(_grey_levels(image, image.mode), "L")
    if image.mode in VIA:
        return image.convert(VIA[image.mode])
    return image


def _grey_levels(image: Image.Image, mode: str) -> np.ndarray:
    array = np.nan_to_num(np.asarray(image, dtype=np.float64), posinf=0.0, neginf=0.0)
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and 255 < high <= 65535 and low >= 0):
        scaled = array / 257.0
    elif mode == "F" and low >= 0 and high <= 1.0:
        scaled = array * 255.0
    elif low >= 0 and high <= 255:
        scaled = array
    else:
        scaled = (array - low) * (255.0 / ((high - low) or 1.0))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def current_umask() -> int:
    """The process umask, read without changing it (Linux: /proc/self/status)."""
    with contextlib.suppress(OSError, ValueError, StopIteration), open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def to_array(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(rgb, alpha, mode)``: RGB float32 in [-1, 1], alpha as uint8 or None, and the mode
    to give the result (the input's for RGB/RGBA/L/LA, L for wider greys, else RGB or
    RGBA). Every mode Pillow reads is converted by :func:`eight_bit` first."""
    image = eight_bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    mode = image.mode if image.mode in KEPT_MODES else ("RGBA" if has_alpha else "RGB")
    alpha = np.asarray(image.convert("RGBA"))[..., 3].copy() if has_alpha else None
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return rgb, alpha, mode


def from_array(rgb: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """Inverse of :func:`to_array`."""
    pixels = np.clip(np.rint((rgb + 1.0) * 127.5), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha, "L"))
    return image.convert(mode) if image.mode != mode else image
