"""`dreamcrawl demo`: the whole job on a bundled local site, offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole job on a bundled local site, offline",
        description="Serve the bundled demo site on 127.0.0.1, crawl it by keyword, dream "
        "what was found with a fast preset, and write a gallery.",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="gallery folder (default: DREAMCRAWL_HOME/gallery)"
    )
    parser.add_argument(
        "--keyword", action="append", metavar="K", help="keywords (default: cat, space, coffee)"
    )
    parser.add_argument("--preset", default="fast", metavar="NAME", help="preset (default fast)")
    parser.add_argument(
        "--steps", type=int, metavar="N", help="steps per octave (default: the demo's 15)"
    )
    parser.add_argument("--weights", metavar="PATH", help="InceptionV3 weights file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.demo import DEMO_STEPS, print_next_steps, run_demo
    from pipeline.demo_site import DEMO_KEYWORDS
    from stylize.params import DreamParams

    steps = DEMO_STEPS if args.steps is None else args.steps
    dream = DreamParams.parse(presets=[args.preset], steps=steps)
    dream.configs()  # an unknown preset or a bad step count is exit 2 before any work
    result = run_demo(
        out_dir=args.out,
        keywords=args.keyword or DEMO_KEYWORDS,
        dream=dream,
        weights=args.weights,
    )
    print_next_steps(result)
    return 1 if result["summary"].get("failed") else 0
