"""`dreamcrawl dream` through the real command line: results, and bad input refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.weights_fixture import photo

REPO = Path(__file__).resolve().parents[1]


def dream(args: list[str], weights: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DREAMCRAWL_WEIGHTS": str(weights), "DREAMCRAWL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "dream", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
    )  # fmt: skip


@pytest.fixture
def small_jpeg(tmp_path: Path) -> Path:
    """A 200×120 photo stored sideways with EXIF orientation 6 (rotate 90° on display)."""
    path = tmp_path / "cat.jpg"
    upright = photo("chelsea", 200)
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
    return path


def test_dream_writes_the_image_upright_at_full_size_and_reproducibly(
    tmp_path: Path,
    small_jpeg: Path,
    converted_weights: Path,
) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    args = ["--preset", "fast", "--steps", "2", "--seed", "3"]
    result = dream([str(small_jpeg), str(first), *args], converted_weights, tmp_path / "h")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1 and "objective" in summary[0]
    assert re.search(r" s on (CPU|GPU)", summary[0])  # the device that computed it
    before, after = (float(v) for v in summary[0].rsplit("objective ", 1)[1].split(" -> "))
    assert after > before
    with Image.open(first) as out:
        assert out.size == (200, 133)  # EXIF orientation applied: upright, not 133×200
    again = dream([str(small_jpeg), str(second), *args], converted_weights, tmp_path / "h")
    assert again.returncode == 0, again.stderr
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


BAD_INPUTS = {
    "not-an-image": (["{bad}", "{out}"], "not a readable image"),
    "missing-input": (["{tmp}/nope.jpg", "{out}"], "not found"),
    "unknown-layer": (["{img}", "{out}", "--layers", "mixed3,mixed42"], "valid layers: mixed0,"),
    "channel-out-of-range": (["{img}", "{out}", "--channel", "mixed4:900"], "768 channels"),
    "octave-scale": (["{img}", "{out}", "--octave-scale", "1.0"], "greater than 1"),
    "too-many-octaves": (["{img}", "{out}", "--octaves", "6"], "at most 3 fit"),
    "unwritable-output": (["{img}", "{tmp}/no/such/dir/out.png"], "does not exist"),
    "output-is-a-folder": (["{img}", "{tmp}"], "it is a folder"),
    "unknown-output-type": (["{img}", "{tmp}/out.xyz"], "unknown image type"),
    "unknown-preset": (["{img}", "{out}", "--preset", "nope"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    case: str,
    tmp_path: Path,
    converted_weights: Path,
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("this is not a JPEG")
    image = tmp_path / "cat.png"
    photo("chelsea", 240).save(image)  # 240×160: three octaves of 1.4 fit, not six
    out = tmp_path / "out.png"
    template, expected = BAD_INPUTS[case]
    values = {"bad": bad, "img": image, "out": out, "tmp": tmp_path}
    args = [part.format(**values) for part in template]
    before = sorted(tmp_path.iterdir())
    result = dream(args, converted_weights, tmp_path / "home")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dreamcrawl") and "error:" in lines[0]
    assert expected in lines[0]
    assert not out.exists()
    assert sorted(tmp_path.iterdir()) == before
