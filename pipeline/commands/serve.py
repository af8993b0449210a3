"""`dreamcrawl serve`: serve the Prefect deployments (scheduled crawls, on-demand flows).

Point it at a Prefect server (``prefect server start``, then
``PREFECT_API_URL=http://127.0.0.1:4200/api``) to see and trigger the deployments in the
UI; docs/operating.md walks through it.
"""

from __future__ import annotations

import argparse

NAME = "serve"
DESCRIPTION = (
    "Serve scheduled keyword crawls from a TOML/YAML config, plus on-demand "
    "crawl, stylize and pipeline deployments, until interrupted."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="serve config (TOML or YAML)")
    parser.add_argument(
        "--check", action="store_true", help="validate the config, list deployments, exit"
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="run at most N flow runs at once (default: no cap)"
    )


def run(args: argparse.Namespace) -> int:
    from flows.deployments import load_config, serve

    config = load_config(args.config)
    if args.check:
        for item in config.scheduled:
            print(f"{item.name}\t{item.kind}\tcron {item.cron}\t{item.parameters}")
        print("crawl\ton-demand\nstylize\ton-demand\npipeline\ton-demand")
        return 0
    serve(config, limit=args.limit)
    return 0
