"""TensorFlow's C++ log lines stay off the terminal by default, and come back with -v.

The end-to-end tests run the real `dreamcrawl dream` (real weights, real TensorFlow) in
a subprocess; on a machine without a GPU TensorFlow otherwise prints
``E0000 … failed call to cuInit`` and absl's notices there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.quiet_tensorflow import ENV, MARKER, dropping_noise, quiet_tensorflow
from tests.conftest import REPO
from tests.weights_fixture import photo

TF_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ", re.MULTILINE)


def dream(tmp_path: Path, weights: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "cat.jpg"
    photo("chelsea", 120).save(source)
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env.update(DREAMCRAWL_WEIGHTS=str(weights), DREAMCRAWL_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *flags, "dream", str(source),
         str(tmp_path / "out.jpg"), "--preset", "fast", "--steps", "1"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
    )  # fmt: skip


def test_dream_stderr_has_no_tensorflow_lines_by_default(
    tmp_path: Path, converted_weights: Path
) -> None:
    result = dream(tmp_path, converted_weights)
    assert result.returncode == 0, result.stderr
    assert not TF_LINE.search(result.stderr), result.stderr
    for noise in ("E0000", "cuInit", "absl", "oneDNN", "cuda drivers"):
        assert noise not in result.stderr, result.stderr
    # The device is still said, in the result line.
    assert re.search(r" s on (CPU|GPU:\S+);", result.stdout), result.stdout


def test_verbose_shows_tensorflow_lines_and_names_the_device(
    tmp_path: Path, converted_weights: Path
) -> None:
    result = dream(tmp_path, converted_weights, "-v")
    assert result.returncode == 0, result.stderr
    assert TF_LINE.search(result.stderr), result.stderr  # TensorFlow's own lines are back
    device_lines = [line for line in result.stderr.splitlines() if "dreams run on " in line]
    assert len(device_lines) == 1, result.stderr
    assert re.search(
        r"dreams run on (the CPU: TensorFlow .* sees no GPU|GPU:\S+ \()", device_lines[0]
    )


@pytest.mark.parametrize(
    ("verbosity", "env", "quiet", "after"),
    [
        (0, {}, True, "3"),
        (0, {ENV: "0"}, False, "0"),  # the user's value wins
        (1, {}, False, None),  # -v: TensorFlow's default, everything
    ],
)
def test_quiet_tensorflow_never_overrides_the_user(
    verbosity: int, env: dict[str, str], quiet: bool, after: str | None
) -> None:
    assert quiet_tensorflow(verbosity, env) is quiet
    assert env.get(ENV) == after
    assert (env.get(MARKER) == "1") is quiet


def test_processes_spawned_by_a_quiet_dreamcrawl_import_tensorflow_quietly() -> None:
    """Prefect runs each served flow run in a spawned process that re-imports pipeline.cli."""
    env = {**os.environ, ENV: "3", MARKER: "1"}
    code = "import pipeline.cli\nimport tensorflow as tf\nprint(tf.constant(2.0).numpy() * 2)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4.0"
    assert not TF_LINE.search(result.stderr) and "absl" not in result.stderr, result.stderr


def test_dropping_noise_passes_on_everything_else(capfd: pytest.CaptureFixture[str]) -> None:
    with dropping_noise():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")  # fmt: skip
        os.write(2, b"I0000 00:00:1795978148.227940    6336 port.cc:153] oneDNN custom\n")
        os.write(2, b"E0000 00:00:1795978202.657744 7453 cuda_platform.cc:52] failed cuInit\n")
        os.write(2, b"a warning of our own\n")
        os.write(2, b"Traceback (most recent call last):\n")
    assert capfd.readouterr().err.splitlines() == [
        "a warning of our own",
        "Traceback (most recent call last):",
    ]
