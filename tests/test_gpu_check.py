"""benchmarks/gpu_check.sh runs its CPU fallback here (no GPU in CI), so it cannot rot:
it must find no GPU, run parts (a) and (c) in fp32 and bf16 at small sizes, and write a
markdown table with a row per precision. Figures are not asserted (docs/benchmarks.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(1800)  # two benchmark processes: ~5 minutes on 2 quiet cores
def test_gpu_check_runs_its_cpu_fallback(tmp_path, converted_weights) -> None:
    table = tmp_path / "gpu.md"
    env = {**os.environ, "DREAMCRAWL_WEIGHTS": str(converted_weights), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(table)],
        capture_output=True, text=True, env=env, timeout=1200, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TensorFlow sees no GPU" in done.stdout
    text = table.read_text()
    assert text.startswith("Device: CPU fallback")
    rows = [line for line in text.splitlines() if re.match(r"\| (fp32|bf16) \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["fp32", "bf16"]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 9 and cells[1].endswith(" s") and cells[6].endswith("×")
