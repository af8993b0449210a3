"""The DeepDream benchmark's small run, as CI runs it (figures are not asserted: speed
belongs in docs/benchmarks.md, not in tests — what it measured and counted is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_small_benchmark_runs_both_sides_on_the_same_work(tmp_path, converted_weights) -> None:
    figures = tmp_path / "dream.json"
    env = {**os.environ, "DREAMCRAWL_WEIGHTS": str(converted_weights)}
    command = [sys.executable, str(REPO / "benchmarks" / "bench_dream.py"), "--small"]
    command += ["--processes", "1", "--json", str(figures)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(a) one photo" in done.stdout and "(b) 3 photos of 300–420 px" in done.stdout
    assert "(c) 4 photos of 300–420 px" in done.stdout and "tiles per call" in done.stdout
    assert "gradient steps" in done.stdout and "whole dream" in done.stdout

    (run,) = json.loads(figures.read_text())
    a, b, c = run["a"], run["b"], run["c"]
    # 384² (2 octaves: 274² and 384²) × 2 steps, the same pixel count for both sides.
    assert a["pixels"] == (274 * 274 + 384 * 384) * 2
    assert 0 < a["ours_steps_s"] < a["ours_s"]
    assert min(a["ours_step_flop_fraction"], a["ours_flop_fraction"]) > 0
    # The whole dream's FLOPs are its steps' plus the two scoring passes.
    assert a["ours_flops"] * a["ours_s"] > a["ours_step_flops"] * a["ours_steps_s"]
    # One trace per step function (gradient, evaluate) for every size; the baseline
    # retraces for each new tile shape.
    assert b["ours_traces"] == 2
    assert b["baseline_traces"] >= 4
    assert b["images"] == 3 and sorted(b["sizes"]) == [300, 360, 420]
    # (c): the same photos both ways; together, tiles of different photos share calls,
    # and nothing was traced again after the warm-up pass.
    assert c["images"] == 4 and sorted(c["sizes"]) == [300, 333, 360, 420]
    assert c["many_tiles_per_call"] > c["alone_tiles_per_call"] >= 1
    assert min(c["many_flop_fraction"], c["alone_flop_fraction"]) > 0
    assert c["retraced"] is False
