"""`dreamcrawl deploy`: register the deployments on Prefect work pools and exit.

For several machines (docs/deploying.md): crawls and pipelines go to the ``crawl``
pool, dreams to the ``dream`` pool; ``prefect worker start --pool NAME`` on each
machine runs them. Needs ``PREFECT_API_URL`` pointing at the Prefect server.
"""

from __future__ import annotations

import argparse

NAME = "deploy"
DESCRIPTION = (
    "Register scheduled crawls from a TOML/YAML config, plus on-demand "
    "crawl, stylize and pipeline deployments, on the work pools of its [pools] table "
    "(default: crawl and dream), then exit. Workers run them."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="serve config (TOML or YAML)")


def run(args: argparse.Namespace) -> int:
    import flows  # noqa: F401  (Prefect defaults before Prefect loads)
    from flows.deployments import load_config
    from flows.pools import deploy

    for name, pool in deploy(load_config(args.config)):
        print(f"{name}\tpool {pool}")
    return 0
