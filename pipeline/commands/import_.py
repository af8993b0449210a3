"""`dreamcrawl import`: import the user's own image files into the catalog."""

from __future__ import annotations

import argparse

from crawler.writer import NearDuplicates
from pipeline.commands.crawl import print_result

NAME = "import"
DESCRIPTION = (
    "Import image files (folders are walked) through the crawler's validation: "
    "each file ends as an image, a duplicate or a rejection with its reason."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    parser.add_argument(
        "--keyword",
        "-k",
        action="append",
        default=[],
        metavar="K",
        required=True,
        help="what the images show (repeatable)",
    )
    parser.add_argument(
        "--near-duplicates",
        choices=[p.value for p in NearDuplicates],
        default=NearDuplicates.KEEP.value,
        help="keep (flagged, default) or skip",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from crawler.file_import import import_paths
    from storage.models import CrawlStatus

    result = import_paths(args.paths, args.keyword, near_duplicates=args.near_duplicates)
    print_result(result, args.json, "import")
    return 0 if result.status == CrawlStatus.FINISHED else 1
