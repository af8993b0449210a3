"""Where one gradient step of the engine spends its time, by TensorFlow op type.

The dream benchmark (bench_dream.py) gives the engine's FLOP/s as a fraction of a
matmul; this script says what the rest of the time is. It runs the traced gradient of
an objective on a batch of random tiles in a TF1-style session with a full trace, with
ops run one at a time (inter-op parallelism 1) so their times add up to the step, and
prints the time per op type and the convolutions' own FLOP/s next to a 4096² matmul.

    python benchmarks/profile_step.py                       # classic preset, 4 × 523²
    python benchmarks/profile_step.py --batch 1 --size 395 --preset fast
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from bench_dream import conv_flops, matmul_peak

# Convolution kernels as TensorFlow names them with oneDNN (the default on x86) and without.
CONV_OPS = (
    "_MklNativeFusedConv2D",
    "_MklNativeConv2D",
    "_MklNativeConv2DBackpropInput",
    "_FusedConv2D",
    "Conv2D",
    "Conv2DBackpropInput",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="classic")
    parser.add_argument("--batch", type=int, default=4, help="tiles per call")
    parser.add_argument("--size", type=int, default=523, help="tile side in px")
    parser.add_argument("--runs", type=int, default=3, help="traced runs to average")
    args = parser.parse_args()

    import tensorflow as tf

    from stylize.config import get_preset
    from stylize.engine import Engine
    from stylize.weights import load_weights, resolve_weights

    config = get_preset(args.preset)
    engine = Engine(load_weights(*resolve_weights()))
    gradient, _ = engine.functions(config)
    concrete = gradient.get_concrete_function()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(concrete.graph.as_graph_def(), name="")
    # The network's weights are captured tensors: feed them as the placeholders they are.
    feeds = {
        inner.name: outer.numpy()
        for inner, outer in zip(
            concrete.graph.internal_captures, concrete.captured_inputs, strict=True
        )
    }
    shape = (args.batch, args.size, args.size, 3)
    feeds[concrete.inputs[0].name] = np.random.default_rng(0).uniform(-1, 1, shape)
    fetches = [t.name for t in concrete.outputs]
    times: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    with tf.compat.v1.Session(graph=graph) as session:
        for _ in range(2):
            session.run(fetches, feeds)
        for _ in range(args.runs):
            options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
            metadata = tf.compat.v1.RunMetadata()
            session.run(fetches, feeds, options=options, run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    label = node.timeline_label
                    kind = label.split("=")[-1].split("(")[0].strip() if "=" in label else "?"
                    times[kind] += node.all_end_rel_micros / 1e3 / args.runs
                    counts[kind] += 1
    peak = matmul_peak()
    total = sum(times.values())
    conv = sum(v for k, v in times.items() if k in CONV_OPS)
    flops = conv_flops(gradient, args.batch, args.size, args.size)
    print(f"{args.preset}, {args.batch} × {args.size}² px: {total:.0f} ms of op time per step")
    for kind, ms in times.most_common():
        if ms >= 0.1:
            share, calls = 100 * ms / total, counts[kind] // args.runs
            print(f"  {kind:34s} {ms:8.1f} ms {share:5.1f} %  ×{calls}")
    print(
        f"convolutions: {100 * conv / total:.0f} % of the op time, "
        f"{flops / (conv / 1e3) / 1e9:.0f} GFLOP/s = {100 * flops / (conv / 1e3) / peak:.0f} % "
        f"of a 4096² matmul ({peak / 1e9:.0f} GFLOP/s); whole step "
        f"{100 * flops / (total / 1e3) / peak:.0f} %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
