"""Numbers a dream cannot use are refused on the command line: one line, exit 2, nothing
written — infinite or huge step sizes and layer weights, and a precision the device
cannot do (fp16 on a CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_dream_cli import dream
from tests.weights_fixture import photo

CASES = {
    # The CLI's parameter model refuses what is not finite; DreamConfig.validate the rest.
    "step-size-1e309": (["--step-size", "1e309"], "step size must be a finite number"),
    "step-size-inf": (["--step-size", "inf"], "step size must be a finite number"),
    "step-size-nan": (["--step-size", "nan"], "step size must be a finite number"),
    "step-size-2": (["--step-size", "2"], "step size must be less than or equal to 1"),
    "weight-1e308": (["--layers", "mixed4=1e308"], "finite number within ±1000"),
    "octave-scale-inf": (["--octave-scale", "inf"], "octave scale must be"),
    "fp16-on-cpu": (["--precision", "fp16"], "precision fp16 needs a GPU"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_numbers_are_one_line_and_exit_2(
    case: str, tmp_path: Path, converted_weights: Path
) -> None:
    flags, message = CASES[case]
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    photo("coffee", 120).save(source)
    done = dream([str(source), str(out), "--preset", "fast", *flags], converted_weights, tmp_path)
    assert done.returncode == 2, done.stderr
    # One line of ours (TensorFlow's own start-up log may precede it, from C++).
    ours = [line for line in done.stderr.splitlines() if line.startswith("dreamcrawl")]
    assert len(ours) == 1 and message in ours[0] and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == ours[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.glob(".out*")) == []
