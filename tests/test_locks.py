"""The lock files resolve: requirements/lock.txt, and lock-gpu.txt for DREAMCRAWL_GPU=1.

scripts/setup installs lock-gpu.txt instead of lock.txt when DREAMCRAWL_GPU=1. Nothing
here needs a GPU or downloads the ~3 GB of CUDA wheels: uv resolves pyproject.toml's
requirements (with the lock's extras) using only package metadata, constrained to the
lock's pins, and must come back with exactly those pins. That proves each lock is
complete, consistent, and up to date with pyproject.toml. uv answers from its cache
when it can (``--offline``), and asks PyPI for the metadata otherwise.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LOCKS = {
    "requirements/lock.txt": ["dev", "postgres"],
    "requirements/lock-gpu.txt": ["dev", "postgres", "gpu"],
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {name.lower(): version for name, version in PIN.findall(text)}


def resolve(lock: str, extras: list[str], tmp_path: Path, *, offline: bool) -> str:
    out = tmp_path / "resolved.txt"
    command = [
        str(Path(sys.executable).parent / "uv"), "pip", "compile", "pyproject.toml",
        *(arg for extra in extras for arg in ("--extra", extra)),
        "-c", lock, "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
        "--no-header", "--no-annotate", "--quiet", "-o", str(out),
        *(["--offline"] if offline else []),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip()[-2000:])
    return out.read_text()


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_lock_resolves_to_exactly_its_pins(lock: str, extras: list[str], tmp_path: Path) -> None:
    try:
        resolved = resolve(lock, extras, tmp_path, offline=True)
    except RuntimeError:  # uv's cache lacks some metadata: fetch it (metadata only)
        resolved = resolve(lock, extras, tmp_path, offline=False)
    assert pins(resolved) == pins((REPO / lock).read_text())


def test_gpu_lock_is_the_cpu_lock_plus_cuda_libraries() -> None:
    cpu = pins((REPO / "requirements/lock.txt").read_text())
    gpu = pins((REPO / "requirements/lock-gpu.txt").read_text())
    assert {name: gpu.get(name) for name in cpu} == cpu  # same versions everywhere
    extra = sorted(set(gpu) - set(cpu))
    assert extra and all(name.startswith("nvidia-") for name in extra), extra
    assert "nvidia-cudnn-cu12" in extra and gpu["tensorflow"] == cpu["tensorflow"]
