"""The options ``catalog list``, ``export`` and ``gallery`` share, and the query they build.

Filters, columns, order and limit become one validated :class:`storage.queries.Query`,
so every listing command reads the same flags the same way.
"""

from __future__ import annotations

import argparse
from typing import Any

# storage.queries.KINDS, named here so that `--help` needs no database imports.
KIND_NAMES = ("stylizations", "images", "runs", "rejections", "labels")


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text}") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"must be in (0, 86400] seconds, not {text}")
    return value


def add_kind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=KIND_NAMES, default="stylizations", help="what to list")


def add_filters(
    parser: argparse.ArgumentParser, *, status: bool = True, reason: bool = True
) -> None:
    group = parser.add_argument_group("filters (repeat an option for alternatives)")
    group.add_argument("--keyword", action="append", default=[], help="found under keyword")
    group.add_argument("--source", action="append", default=[], help="sighting source")
    group.add_argument("--preset", action="append", default=[], help="stylization preset")
    group.add_argument("--layer", action="append", default=[], help="dreamed on layer mixedN")
    group.add_argument("--since", metavar="WHEN", help="on or after (2024-05-31[T14:00], UTC)")
    group.add_argument("--until", metavar="WHEN", help="before; a bare date includes that day")
    if status:
        group.add_argument("--status", action="append", default=[], help="row status")
    if reason:
        group.add_argument("--reason", action="append", default=[], help="rejection reason")
    group.add_argument("--run", action="append", type=int, default=[], help="crawl run id")
    group.add_argument("--image", action="append", type=int, default=[], help="image id")
    group.add_argument(
        "--label", action="append", default=[], metavar="CLASS",
        help="shows this ImageNet class (name like tabby, or WordNet id like n02123045)",
    )  # fmt: skip
    group.add_argument(
        "--label-of", action="append", default=[], metavar="WORD",
        help="shows any ImageNet class under WORD in WordNet (cat: tabby, Persian, lynx…)",
    )  # fmt: skip


def add_shape(parser: argparse.ArgumentParser, *, default_limit: int | None) -> None:
    parser.add_argument("--columns", metavar="A,B,…", help="columns to show, in order")
    parser.add_argument("--sort", metavar="COL[:desc],…", help="order (default: newest first)")
    parser.add_argument(
        "--limit",
        type=non_negative,
        default=default_limit,
        help="most rows (0 for all; default "
        + ("all" if default_limit is None else str(default_limit))
        + ")",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def listing_filters(args: argparse.Namespace) -> Any:
    from storage.errors import UserError
    from storage.queries import Filters, parse_when
    from stylize.params import Layer

    layers = [layer.value for layer in Layer]
    for layer in args.layer:
        if layer not in layers:
            raise UserError(f"unknown --layer {layer!r}: use one of {', '.join(layers)}")
    return Filters(
        keyword=tuple(args.keyword),
        source=tuple(args.source),
        preset=tuple(args.preset),
        layer=tuple(args.layer),
        status=tuple(getattr(args, "status", ())),
        reason=tuple(getattr(args, "reason", ())),
        run=tuple(args.run),
        image=tuple(args.image),
        label=tuple(args.label),
        label_of=classes_under(args.label_of),
        since=parse_when(args.since, "--since") if args.since else None,
        until=parse_when(args.until, "--until", end_of_day=True) if args.until else None,
    )


def classes_under(words: list[str]) -> tuple[str, ...]:
    """The WordNet ids of the ImageNet classes under any of ``words``."""
    if not words:
        return ()
    from storage.errors import UserError
    from stylize.labels import imagenet_classes
    from stylize.wordnet import keyword_classes

    classes = imagenet_classes()
    wnids: set[str] = set()
    for word in words:
        covered = keyword_classes(word)
        if covered is None:
            raise UserError(
                f"--label-of {word!r}: no ImageNet class falls under it in WordNet; "
                "try a broader word (cat, dog, car, bird) or --label with a class name"
            )
        wnids |= {classes[i][0] for i in covered}
    return tuple(sorted(wnids))


def build_query(
    args: argparse.Namespace, kind_name: str, *, status: tuple[str, ...] | None = None
) -> Any:
    """The listing the flags ask for; ``status`` fixes the statuses (the gallery: done)."""
    from dataclasses import replace

    from storage.queries import Query, check_filters, get_kind, parse_columns, parse_sort

    kind = get_kind(kind_name)
    filters = listing_filters(args)
    if status is not None:
        filters = replace(filters, status=status)
    check_filters(kind, filters)
    return Query(
        kind=kind,
        filters=filters,
        columns=parse_columns(kind, getattr(args, "columns", None)),
        sort=parse_sort(kind, getattr(args, "sort", None)),
        limit=args.limit or None,
    )
