"""Is it an image we want? Sniff, verify, measure and hash the original bytes.

The same checks serve crawled downloads and the user's own files. The content decides,
whatever the Content-Type or the file name says. Dimensions are taken from the header,
before any pixel is decoded, so a decompression bomb is refused before it can expand;
the pixels are then decoded in full (at reduced scale for JPEG, which still reads every
byte), which is what catches truncated files.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np

# imagehash.phash imports scipy.fftpack on its first call: done here, at start-up, it
# does not hold the import lock (and the GIL) while the first images wait to be hashed.
import scipy.fftpack  # noqa: F401
from PIL import Image, ImageFile, UnidentifiedImageError

from crawler import reasons
from storage.records import ImageFacts
from stylize.limits import MAX_PIXELS

ImageFile.LOAD_TRUNCATED_IMAGES = False
EXIF_ORIENTATION = 0x0112
ROTATED_ORIENTATIONS = {5, 6, 7, 8}
HASH_SIZE = 8
SVG_MARKERS = (b"<svg", b"<!doctype svg")


@dataclass(frozen=True)
class Limits:
    """What an acceptable image looks like (DREAMCRAWL_* settings)."""

    min_width: int = 64
    min_height: int = 64
    max_pixels: int = MAX_PIXELS  # one size policy with the dreams (stylize/limits.py)
    max_bytes: int = 32 * 1024 * 1024
    formats: frozenset[str] = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"})


class Rejected(Exception):
    """The bytes are not an image we keep; ``reason`` is a rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def inspect_image(source: bytes | Path, limits: Limits) -> ImageFacts:
    """Validate ``source`` (bytes or a file path) and describe it; raise :class:`Rejected`."""
    data = read_regular_file(source, limits.max_bytes) if isinstance(source, Path) else source
    if len(data) > limits.max_bytes:
        raise Rejected(reasons.TOO_LARGE, f"{len(data)} bytes > {limits.max_bytes}")
    if not data:
        raise Rejected(reasons.NOT_IMAGE, "empty body")
    try:
        return _inspect(data, limits)
    except Rejected:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit, a backstop to ours
        raise Rejected(reasons.BOMB, str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        # Damaged files fail in many places of Pillow's decoders, not only in load().
        reason = reasons.TRUNCATED if "truncated" in str(exc) else reasons.CORRUPT
        raise Rejected(reason, f"cannot decode: {type(exc).__name__}: {exc}") from exc


FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is (or links to) a regular file of at most
    ``max_bytes``; otherwise :class:`Rejected` with the reason.

    Opened non-blocking, so a FIFO cannot hang the import, and checked with fstat() on
    the opened descriptor, so nothing can be swapped in between check and read. The
    size bound holds while reading too: a file that grows is cut off, not read on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            detail = "too many levels of symbolic links (a symbolic link loop)"
        else:
            detail = f"{exc.strerror or exc}"
        raise Rejected(reasons.UNREADABLE, detail) from exc
    with os.fdopen(fd, "rb", buffering=0) as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise Rejected(reasons.NOT_REGULAR_FILE, kind)
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise Rejected(reasons.UNREADABLE, f"{exc.strerror or exc}") from exc
    if data is None or len(data) > max_bytes:
        raise Rejected(reasons.TOO_LARGE, f"more than {max_bytes} bytes")
    return data


def _inspect(data: bytes, limits: Limits) -> ImageFacts:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        head = data[:512].lstrip().lower()
        if any(marker in head for marker in SVG_MARKERS):
            raise Rejected(reasons.UNSUPPORTED_FORMAT, "SVG (vector) images are not kept") from exc
        raise Rejected(reasons.NOT_IMAGE, "content is not a recognised image format") from exc
    with image:
        fmt = image.format or "unknown"
        if fmt not in limits.formats:
            raise Rejected(reasons.UNSUPPORTED_FORMAT, f"{fmt} is not one of the kept formats")
        width, height = image.size
        if width * height > limits.max_pixels:
            raise Rejected(
                reasons.BOMB, f"{width}x{height} pixels exceed the limit of {limits.max_pixels}"
            )
        if image.getexif().get(EXIF_ORIENTATION) in ROTATED_ORIENTATIONS:
            width, height = height, width
        if width < limits.min_width or height < limits.min_height:
            raise Rejected(
                reasons.TOO_SMALL,
                f"{width}x{height} is below {limits.min_width}x{limits.min_height}",
            )
        phash = _decode_and_hash(image)
    return ImageFacts(
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        format=fmt,
        bytes=len(data),
        phash=phash,
    )


def _decode_and_hash(image: Image.Image) -> str:
    """Decode every pixel (catching truncation) and return the 64-bit perceptual hash."""
    if image.format == "JPEG":
        # DCT scaling: libjpeg still reads the whole stream, but skips most of the IDCT.
        image.draft("L", (HASH_SIZE * 8, HASH_SIZE * 8))
    image.load()
    return str(imagehash.phash(_grey(image), hash_size=HASH_SIZE))


def _grey(image: Image.Image) -> Image.Image:
    """8-bit greyscale, scaling 16- and 32-bit modes instead of clipping them."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        return Image.fromarray((array * (255.0 / top)).astype(np.uint8), mode="L")
    if image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = (array.max() - array.min()) or 1.0
        return Image.fromarray(((array - array.min()) * (255.0 / span)).astype(np.uint8))
    return image.convert("L")


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex pHashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
