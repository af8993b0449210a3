#!/usr/bin/env bash
# The DeepDream stage on a GPU, in one go (under 8 minutes on an H100/H200-class GPU):
#   1. checks that TensorFlow sees a GPU (and says which);
#   2. runs bench_dream.py part (a) (one 1024 px photo, classic preset, against the
#      TF-tutorial baseline) and part (c) (32 crawled-size photos, dream_many against one
#      at a time), once in fp32 and once in bf16, each in a fresh process;
#   3. writes a markdown table of the figures to OUT (default gpu_check.md).
# Without a GPU it runs the same steps on the CPU at --small sizes (the CI fallback that
# tests/test_gpu_check.py runs, so this script cannot rot) and says so in the table.
#
#   benchmarks/gpu_check.sh [OUT.md]        # PYTHON=... to use another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-gpu_check.md}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TF_CPP_MIN_LOG_LEVEL=2

gpu=$("$PY" -c 'import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "")')
if [ -n "$gpu" ]; then
    echo "TensorFlow sees a GPU: $gpu"
    mode="GPU: $gpu"
    sizes=(--photos 32)
    limit=200
else
    echo "TensorFlow sees no GPU: running the CPU fallback at --small sizes"
    mode="CPU fallback (no GPU seen by TensorFlow), --small sizes"
    sizes=(--small)
    limit=600
fi

for precision in fp32 bf16; do
    echo "bench_dream.py --parts ac --precision $precision ${sizes[*]}"
    timeout "$limit" "$PY" benchmarks/bench_dream.py --parts ac --processes 1 \
        --precision "$precision" "${sizes[@]}" --json "$WORK/$precision.json"
done

"$PY" - "$WORK" "$OUT" "$mode" <<'EOF'
import json, sys
from pathlib import Path

work, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
rows = [
    "| precision | (a) classic, one photo | (a) vs tutorial | (a) steps, of matmul "
    "| (c) together | (c) alone | (c) ratio | (c) tiles per call (together / alone) "
    "| (c) of matmul (together / alone) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for precision in ("fp32", "bf16"):
    (run,) = json.loads((work / f"{precision}.json").read_text())
    a, c = run["a"], run["c"]
    side = round(a["pixels"] ** 0.5)
    rows.append(
        f"| {precision} | {a['ours_s']:.2f} s | {a['ratio']:.2f}× "
        f"| {100 * a['ours_step_flop_fraction']:.1f} % "
        f"| {c['many_images_per_min']:.1f} images/min | {c['alone_images_per_min']:.1f} images/min "
        f"| {c['ratio']:.2f}× | {c['many_tiles_per_call']:.1f} / {c['alone_tiles_per_call']:.1f} "
        f"| {100 * c['many_flop_fraction']:.1f} % / {100 * c['alone_flop_fraction']:.1f} % |"
    )
(run,) = json.loads((work / "fp32.json").read_text())
peak = run["a"]["peak_flops"]
text = [
    f"Device: {mode}. Matmul peak ({run['peak_side']}² float32, same process): "
    f"{peak / 1e12:.2f} TFLOP/s.",
    f"(c): {c['images']} photos of {min(c['sizes'])}–{max(c['sizes'])} px.",
    "",
    *rows,
    "",
]
out.write_text("\n".join(text))
print("\n".join(text))
EOF
echo "table written to $OUT"
