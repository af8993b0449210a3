"""`dreamcrawl demo`: the whole job on a bundled local site, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
DESCRIPTION = (
    "Serve the bundled demo site on 127.0.0.1, crawl it by keyword, dream "
    "what was found with a fast preset, and write a gallery."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument(
        "--serve-site-only",
        action="store_true",
        help="only serve the demo site on 127.0.0.1 until Ctrl-C (a target for `serve` crawls)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        metavar="N",
        help="port of --serve-site-only (default 8765; 0 picks a free one)",
    )


def serve_site_only(port: int) -> int:
    """Serve the bundled site until interrupted, so scheduled crawls have a local target."""
    import signal

    from pipeline.demo_site import DEMO_KEYWORDS, serve_demo_site
    from storage.errors import UserError

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly either way
    try:
        with serve_demo_site(port) as base_url:
            keywords = ", ".join(DEMO_KEYWORDS)
            print(f"demo site on {base_url} (keywords: {keywords}); Ctrl-C stops it", flush=True)
            signal.pause()
    except OSError as exc:
        raise UserError(f"cannot serve the demo site on 127.0.0.1:{port}: {exc.strerror}") from None
    except KeyboardInterrupt:
        pass
    return 0


def run(args: argparse.Namespace) -> int:
    if args.serve_site_only:
        return serve_site_only(args.port)
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
