"""`dreamcrawl crawl`: crawl sites or a search source for images matching keywords."""

from __future__ import annotations

import argparse
import json
from typing import Any

from storage.errors import UserError

NAME = "crawl"
DESCRIPTION = (
    "Crawl web sites (--start-url) or keyword search sources (--source commons) for "
    "images matching the keywords, validate them and add them to the catalog. "
    "Every URL considered ends as an image, a duplicate or a rejection with its "
    "reason. See docs/crawler.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keyword", "-k", action="append", default=[], metavar="K", help="repeatable"
    )
    parser.add_argument(
        "--start-url", action="append", default=[], metavar="URL", help="a page to start from"
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME",
        help="site (default with --start-url) or a search source: commons",
    )
    parser.add_argument("--max-images", type=int, metavar="N", help="stop after N new images")
    parser.add_argument("--depth", type=int, metavar="N", help="link depth from the start URLs")
    parser.add_argument(
        "--allow-private",
        action="store_true",
        help="allow loopback and private network addresses (refused by default)",
    )
    parser.add_argument("--resume", type=int, metavar="RUN", help="continue crawl run RUN")
    parser.add_argument(
        "--content-check",
        action="store_true",
        help="keep an image only if its ImageNet labels show a keyword its text matched "
        "(needs 'dreamcrawl weights fetch --labeller')",
    )
    parser.add_argument(
        "-s",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=value",
        help="override a Scrapy or DREAMCRAWL_* setting",
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="stop gracefully after S s")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from crawler.api import run_crawl

    if args.resume is None and not args.keyword:
        raise UserError("give at least one --keyword (or --resume RUN)")
    if args.resume is not None and (args.keyword or args.start_url or args.source):
        raise UserError("--resume RUN continues a run with its own options; give no others")
    if args.resume is not None:
        _refuse_import_resume(args.resume)
    result = run_crawl(
        keywords=args.keyword,
        start_urls=args.start_url,
        sources=args.source,
        max_images=args.max_images,
        depth=args.depth,
        allow_private=args.allow_private,
        resume=args.resume,
        overrides=args.overrides,
        timeout=args.timeout,
        content_check=args.content_check,
    )
    print_result(result, args.json, "crawl")
    if result.nothing_crawled:
        import sys

        print(
            f"dreamcrawl: crawl run {result.run_id}: nothing was crawled: {result.nothing_crawled}",
            file=sys.stderr,
        )
        return 2
    return 0 if result.status == "finished" else 1


def _refuse_import_resume(run_id: int) -> None:
    """An import has no queue to resume (its folders are its queue): say how to finish it."""
    from storage.db import open_catalog
    from storage.models import CrawlRun
    from storage.settings import get_settings

    with open_catalog(get_settings()).read_session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.kind != "import":
            return
        paths = " ".join((run.settings or {}).get("paths", [])) or "PATH…"
    raise UserError(
        f"run {run_id} is an import, which is not resumed: import the same files again "
        f"(dreamcrawl import {paths} …); those already imported are not imported twice"
    )


def print_result(result: Any, as_json: bool, kind: str) -> None:
    """One summary line (or JSON) on stdout; the error, if any, on stderr."""
    import sys

    counts = result.counts
    if as_json:
        print(json.dumps({"run_id": result.run_id, "status": result.status, **counts}))
    elif not counts:  # the catalog could not be read to count them
        print(f"{kind} run {result.run_id} {result.status}")
    else:
        rejected = ", ".join(f"{r} {n}" for r, n in counts.get("rejected", {}).items())
        print(
            f"{kind} run {result.run_id} {result.status}: "
            f"{counts.get('new_images', 0)} new images, "
            f"{counts.get('duplicates', 0)} duplicates, "
            f"{counts.get('near_duplicates', 0)} near-duplicates, "
            f"{counts.get('rejections', 0)} rejected" + (f" ({rejected})" if rejected else "")
        )
        for line in label_lines(counts):
            print(line)
    if result.error:
        print(
            f"dreamcrawl: {kind} run {result.run_id}: {result.error.splitlines()[-1]}",
            file=sys.stderr,
        )


def label_lines(counts: dict[str, Any]) -> list[str]:
    """What labelling and the content check did, for the summary."""
    lines = []
    labels = counts.get("labels")
    if labels:
        done = ", ".join(f"{n} {status}" for status, n in sorted(labels.items()))
        lines.append(f"labels: {done}")
    check = counts.get("content_check")
    if check is not None:
        lines.append(
            f"content check: {check.get('passed', 0)} passed, {check.get('rejected', 0)} "
            f"rejected (content-mismatch), {check.get('text-only', 0)} accepted on text alone"
        )
        for keyword in check.get("text_only_keywords", []):
            lines.append(
                f"content check: {keyword!r} names no ImageNet class; "
                "images matching it were accepted on their text alone"
            )
    return lines
