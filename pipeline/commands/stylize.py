"""`dreamcrawl stylize`: dream catalog images not yet dreamed with those parameters.

Runs the ``stylize`` Prefect flow (a local, temporary Prefect server unless
``PREFECT_API_URL`` points at one), so every dream records its flow run.
"""

from __future__ import annotations

import argparse

from pipeline.commands.dream_options import add_dream_options, params_from_args

NAME = "stylize"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dream_options(parser, multiple_presets=True)
    parser.add_argument("--limit", type=int, metavar="N", help="dream at most N images")
    parser.add_argument(
        "--image", type=int, action="append", metavar="ID", help="only this image id (repeatable)"
    )
    parser.add_argument(
        "--dask-workers", type=int, default=0, metavar="N", help="fan out over N Dask workers"
    )
    parser.add_argument("--dask-address", metavar="ADDR", help="a running Dask scheduler")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace) -> int:
    from pipeline.flow_runner import print_summary, run_flow

    result = run_flow(
        "stylize",
        {
            "dream": params_from_args(args),
            "limit": args.limit,
            "image_ids": args.image,
            "weights": args.weights,
            "dask_workers": args.dask_workers,
            "dask_address": args.dask_address,
        },
    )
    print_summary(result, as_json=args.json)
    return 1 if result["summary"].get("failed") else 0
