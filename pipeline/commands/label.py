"""`dreamcrawl label`: label the catalog's images with their top ImageNet classes.

Crawls and imports label new images as they go; this labels what is already in the
catalog (images from before the labeller was fetched, or from a crawl run with
``-s DREAMCRAWL_LABELS=false``), in batches, oldest first. Run it again at any time: an
image is never labelled twice by the same labeller.
"""

from __future__ import annotations

import argparse
import json

NAME = "label"
DESCRIPTION = "Label the catalog's unlabelled images (docs/crawler.md#labels)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, metavar="N", help="label at most N images")
    parser.add_argument("--batch", type=int, default=32, metavar="N", help="images per pass")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args: argparse.Namespace) -> int:
    from crawler.labelling import label_catalog
    from storage.db import open_catalog
    from storage.errors import UserError
    from storage.labels import count_unlabelled
    from storage.settings import get_settings
    from stylize.labels import load_labeller

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be 1 or more, got {args.limit}")
    if args.batch < 1:
        raise UserError(f"--batch must be 1 or more, got {args.batch}")
    catalog = open_catalog(get_settings())
    labeller = load_labeller(catalog.settings.weights_dir)
    counts = label_catalog(catalog, labeller, limit=args.limit, batch=args.batch)
    with catalog.read_session() as session:
        left = count_unlabelled(session, labeller.id)
    if args.json:
        print(json.dumps({"labeller": labeller.id, **counts, "left": left}))
    else:
        done = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
        print(f"label: {done}; {left} images left unlabelled ({labeller.id})")
    return 0
