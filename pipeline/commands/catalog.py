"""`dreamcrawl catalog …`: what analysts and operators ask of the catalog.

- ``check`` compares catalog rows with the blob store (see storage.integrity);
- ``list`` / ``export`` / ``gallery`` read the documented views through
  storage.queries, with the same filters;
- ``show`` prints one image's lineage (storage.lineage);
- ``sql`` runs one read-only statement (storage.readonly_sql).

Every listing prints an aligned table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from storage.settings import get_settings

EXIT_PROBLEMS = 1
DEFAULT_LIST_LIMIT = 50
DEFAULT_SQL_LIMIT = 1000
DEFAULT_GALLERY_LIMIT = 60
# storage.queries.KINDS, named here so that `--help` needs no database imports.
KIND_NAMES = ("stylizations", "images", "runs", "rejections")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("catalog", help="query and check the catalog")
    actions = parser.add_subparsers(dest="catalog_action", metavar="ACTION")
    actions.required = True
    for add in (_register_check, _register_list, _register_show, _register_sql,
                _register_export, _register_gallery):  # fmt: skip
        add(actions)


def _register_check(actions: Any) -> None:
    check = actions.add_parser(
        "check",
        help="verify every blob against its row; find orphans",
        description="Exit 0 when the catalog and blob store agree, 1 when problems are found.",
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="remove orphan blobs and unfinished writes, mark rows with bad blobs broken",
    )
    check.add_argument(
        "--min-age",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="with --repair, leave files younger than this alone (default 600: a writer "
        "may still own them)",
    )
    check.add_argument("--json", action="store_true", help="print problems as JSON")
    check.set_defaults(func=run_check)


def _register_list(actions: Any) -> None:
    kinds = ", ".join(KIND_NAMES)
    listing = actions.add_parser(
        "list",
        help="list stylizations, images, crawl runs or rejections",
        description=f"List one kind of row ({kinds}), newest first. A repeated filter gives "
        "alternatives; different filters must all hold. See docs/catalog.md.",
    )
    _add_kind(listing)
    _add_filters(listing)
    _add_shape(listing, default_limit=DEFAULT_LIST_LIMIT)
    _add_json(listing)
    listing.set_defaults(func=run_list)


def _register_show(actions: Any) -> None:
    show = actions.add_parser(
        "show",
        help="one image's whole lineage",
        description="Sightings, crawl runs, rejections of its URLs and every stylization "
        "(parameters, weights, timings) of one image.",
    )
    show.add_argument("image", metavar="IMAGE", help="image id or sha256 prefix (4+ digits)")
    _add_json(show)
    show.set_defaults(func=run_show)


def _register_sql(actions: Any) -> None:
    sql = actions.add_parser(
        "sql",
        help="run a read-only SQL query",
        description="Run one read-only statement against the catalog and its views "
        "(v_stylized, v_images, …). Writes are refused with exit code 2.",
    )
    sql.add_argument("query", metavar="QUERY", help='e.g. "SELECT * FROM v_keyword_yield"')
    sql.add_argument(
        "--limit",
        type=_non_negative,
        default=DEFAULT_SQL_LIMIT,
        help=f"most rows to print (default {DEFAULT_SQL_LIMIT}; 0 for all)",
    )
    _add_json(sql)
    sql.set_defaults(func=run_sql)


def _register_export(actions: Any) -> None:
    export = actions.add_parser(
        "export",
        help="export to CSV or Parquet",
        description="Stream a listing (every column unless --columns) to OUT.csv or "
        "OUT.parquet, in batches, in constant memory.",
    )
    export.add_argument("out", metavar="OUT", type=Path, help="OUT.csv or OUT.parquet")
    export.add_argument(
        "--format", choices=("csv", "parquet"), help="default: from OUT's extension"
    )
    export.add_argument(
        "--batch-size", type=_positive, default=10_000, help="rows per batch (default 10000)"
    )
    _add_kind(export)
    _add_filters(export)
    _add_shape(export, default_limit=None)
    export.set_defaults(func=run_export)


def _register_gallery(actions: Any) -> None:
    gallery = actions.add_parser(
        "gallery",
        help="write a static HTML gallery",
        description="Write OUT_DIR/index.html with before/after thumbnails of finished "
        "stylizations, their parameters, source attribution and licence. Works offline.",
    )
    gallery.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    _add_filters(gallery, status=False, reason=False)
    gallery.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_GALLERY_LIMIT,
        help=f"most pairs to show, newest first (default {DEFAULT_GALLERY_LIMIT})",
    )
    gallery.add_argument(
        "--thumb-size", type=_positive, default=320, help="thumbnail box in px (default 320)"
    )
    gallery.set_defaults(func=run_gallery)


# ------------------------------------------------------------------ options


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _add_kind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=KIND_NAMES, default="stylizations", help="what to list")


def _add_filters(
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


def _add_shape(parser: argparse.ArgumentParser, *, default_limit: int | None) -> None:
    parser.add_argument("--columns", metavar="A,B,…", help="columns to show, in order")
    parser.add_argument("--sort", metavar="COL[:desc],…", help="order (default: newest first)")
    parser.add_argument(
        "--limit",
        type=_non_negative,
        default=default_limit,
        help="most rows (0 for all; default "
        + ("all" if default_limit is None else str(default_limit))
        + ")",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _filters(args: argparse.Namespace) -> Any:
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
        since=parse_when(args.since, "--since") if args.since else None,
        until=parse_when(args.until, "--until", end_of_day=True) if args.until else None,
    )


def _query(
    args: argparse.Namespace, kind_name: str, *, status: tuple[str, ...] | None = None
) -> Any:
    """The listing the flags ask for; ``status`` fixes the statuses (the gallery: done)."""
    from dataclasses import replace

    from storage.queries import Query, check_filters, get_kind, parse_columns, parse_sort

    kind = get_kind(kind_name)
    filters = _filters(args)
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


# ------------------------------------------------------------------ commands


def run_list(args: argparse.Namespace) -> int:
    from pipeline import tables
    from storage.db import open_catalog
    from storage.queries import list_rows

    query = _query(args, args.kind)
    catalog = open_catalog(get_settings())
    rows = list_rows(catalog.engine, query)
    if args.json:
        tables.print_json(rows)
        return 0
    shown = query.columns or query.kind.table_columns
    tables.print_table(shown, rows)
    more = f"; --limit {query.limit} reached, --limit 0 for all" if query.limit else ""
    if query.limit and len(rows) < query.limit:
        more = ""
    tables.note(f"{len(rows)} {query.kind.name}{more}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from pipeline import tables
    from storage.db import open_catalog
    from storage.lineage import lineage

    catalog = open_catalog(get_settings())
    data = lineage(catalog, args.image)
    if args.json:
        tables.print_json(data)
    else:
        tables.print_lineage(data)
    return 0


def run_sql(args: argparse.Namespace) -> int:
    from pipeline import tables
    from storage.db import open_catalog
    from storage.queries import jsonable
    from storage.readonly_sql import check_reading, run_query

    check_reading(args.query)  # before opening (and maybe migrating) anything
    catalog = open_catalog(get_settings())
    limit = args.limit or None
    columns, rows = run_query(catalog.engine, args.query, limit=limit)
    truncated = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    records = [{c: jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    if args.json:
        tables.print_json(records)
    else:
        tables.print_table(columns, records)
        tables.note(
            f"{len(rows)} rows" + (f"; more than --limit {limit}, 0 for all" if truncated else "")
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from storage.db import open_catalog
    from storage.errors import UserError
    from storage.export import export

    fmt = args.format or args.out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise UserError(
            f"cannot tell the export format of {str(args.out)!r}: name it .csv or .parquet, "
            "or pass --format"
        )
    query = _query(args, args.kind)
    catalog = open_catalog(get_settings())
    count = export(catalog.engine, query, args.out, fmt=fmt, batch_size=args.batch_size)
    print(f"wrote {count} {query.kind.name} to {args.out}", file=sys.stderr)
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from pipeline.gallery import write_gallery
    from storage.db import open_catalog
    from storage.models import StylizationStatus

    query = _query(args, "stylizations", status=(StylizationStatus.DONE.value,))
    catalog = open_catalog(get_settings())
    page, count = write_gallery(catalog, query, args.out_dir, thumb_size=args.thumb_size)
    print(f"wrote {count} before/after pairs to {page}", file=sys.stderr)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from storage.db import open_catalog
    from storage.integrity import check, repair

    catalog = open_catalog(get_settings())
    problems = check(catalog)
    actions = repair(catalog, problems, min_age=args.min_age) if args.repair else []
    if args.json:
        print(
            json.dumps(
                {
                    "problems": [
                        {
                            "kind": p.kind,
                            "table": p.table,
                            "row_id": p.row_id,
                            "key": p.key,
                            "detail": p.detail,
                        }
                        for p in problems
                    ],
                    "repairs": actions,
                },
                indent=2,
            )
        )
    else:
        for problem in problems:
            print(problem.describe())
        for action in actions:
            print(f"repair: {action}")
        if not problems:
            print("catalog ok: every row's blob exists and matches; no orphans")
    return EXIT_PROBLEMS if problems else 0
