"""`dreamcrawl run`: crawl, then stylize what the crawl found, as one Prefect flow."""

from __future__ import annotations

import argparse

from pipeline.commands.dream_options import add_dream_options, params_from_args

NAME = "run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keyword", action="append", required=True, metavar="K", help="keyword (repeatable)"
    )
    parser.add_argument("--start-url", action="append", metavar="URL", help="page to start from")
    parser.add_argument("--source", action="append", metavar="NAME", help="keyword search source")
    parser.add_argument("--max-images", type=int, default=20, metavar="N")
    parser.add_argument("--depth", type=int, default=2, metavar="N")
    parser.add_argument(
        "--allow-private", action="store_true", help="allow loopback/private addresses"
    )
    parser.add_argument(
        "--content-check",
        action="store_true",
        help="keep an image only if its ImageNet labels show a keyword its text matched",
    )
    add_dream_options(parser, multiple_presets=True)
    parser.add_argument("--dask-workers", type=int, default=0, metavar="N")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace) -> int:
    from pipeline.flow_runner import print_summary, run_flow
    from storage.errors import UserError

    dream = params_from_args(args)
    if not args.start_url and not args.source:
        raise UserError("give --start-url URL (a site) or --source NAME (e.g. commons)")
    if args.content_check:
        from crawler.api import check_labeller
        from storage.settings import get_settings

        check_labeller(get_settings(), content_check=True)  # exit 2 before anything starts
    result = run_flow(
        "pipeline",
        {
            "keywords": args.keyword,
            "start_urls": args.start_url,
            "sources": args.source,
            "max_images": args.max_images,
            "depth": args.depth,
            "allow_private": args.allow_private,
            "dream": dream,
            "weights": args.weights,
            "dask_workers": args.dask_workers,
            "content_check": args.content_check,
        },
    )
    print_summary(result, as_json=args.json)
    return 1 if result["summary"].get("failed") else 0
