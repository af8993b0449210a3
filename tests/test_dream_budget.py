"""One pixel budget for dreams: refuse with one line, or downscale with --fit.

Also the decode ceiling (a PNG bomb is one line, exit 2) and that the crawler's size
limit and the dream budget come from one policy (stylize/limits.py).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from crawler import settings as crawl_settings
from crawler.validate import Limits
from stylize import limits
from tests.test_dream_cli import dream
from tests.weights_fixture import photo


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width * 3 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)


def test_above_the_budget_is_refused_with_one_line_and_fit_downscales(
    tmp_path: Path, converted_weights: Path
) -> None:
    source = tmp_path / "cat.jpg"
    photo("chelsea", 300).save(source, quality=95)  # 300×200
    out = tmp_path / "out.png"
    refused = dream([str(source), str(out), "--preset", "fast", "--max-pixels", "20000"],
                    converted_weights, tmp_path / "h")  # fmt: skip
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "300×200" in line and "20000" in line and "--fit" in line and "--max-pixels" in line
    assert not out.exists()
    args = ["--preset", "fast", "--steps", "1", "--max-pixels", "20000", "--fit"]
    fitted = dream([str(source), str(out), *args], converted_weights, tmp_path / "h")
    assert fitted.returncode == 0, fitted.stderr
    with Image.open(out) as image:
        width, height = image.size
    assert width * height <= 20000 and abs(width / height - 300 / 200) < 0.02
    assert "downscaled" in fitted.stdout


@pytest.mark.parametrize(
    "args",
    [["--seed", "-1"], ["--max-pixels", "0"], ["--max-pixels", str(limits.MAX_PIXELS + 1)]],
)
def test_bad_numbers_are_one_line(tmp_path: Path, converted_weights: Path, args: list) -> None:
    source = tmp_path / "cat.jpg"
    photo("chelsea", 120).save(source)
    result = dream([str(source), str(tmp_path / "o.png"), "--preset", "fast", *args],
                   converted_weights, tmp_path / "h")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_png_bomb_is_one_line_exit_2(tmp_path: Path, converted_weights: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(30000, 30000))
    result = dream([str(bomb), str(tmp_path / "o.png"), "--preset", "fast", "--fit"],
                   converted_weights, tmp_path / "h")  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and str(30000 * 30000) in line, line
    assert str(limits.MAX_PIXELS) in line.replace(",", "")


def test_the_crawler_limit_and_the_dream_budget_are_one_policy() -> None:
    assert Limits().max_pixels == limits.MAX_PIXELS == crawl_settings.DREAMCRAWL_MAX_PIXELS
    assert limits.DREAM_MAX_PIXELS <= limits.MAX_PIXELS


def test_dream_outputs_respect_the_umask(tmp_path: Path) -> None:
    """Written like any other tool's file: 0666 less the umask (0644 under 022), not 0600."""
    from stylize.image_io import write_image

    previous = os.umask(0o022)
    try:
        write_image(photo("chelsea", 80), tmp_path / "out.png")
        os.umask(0o002)
        write_image(photo("chelsea", 80), tmp_path / "group.jpg")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "group.jpg").stat().st_mode & 0o777 == 0o664
