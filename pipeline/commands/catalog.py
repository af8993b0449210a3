"""`dreamcrawl catalog …`: query, check and export the catalog (analysts, operators).

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

from pipeline.commands.catalog_query import (
    KIND_NAMES,
    add_filters,
    add_json,
    add_kind,
    add_shape,
    build_query,
    non_negative,
    positive,
    positive_seconds,
)
from storage.settings import get_settings

EXIT_PROBLEMS = 1
DEFAULT_LIST_LIMIT = 50
DEFAULT_SQL_LIMIT = 1000
DEFAULT_GALLERY_LIMIT = 60


NAME = "catalog"


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    add_kind(listing)
    add_filters(listing)
    add_shape(listing, default_limit=DEFAULT_LIST_LIMIT)
    add_json(listing)
    listing.set_defaults(func=run_list)


def _register_show(actions: Any) -> None:
    show = actions.add_parser(
        "show",
        help="one image's whole lineage",
        description="Sightings, crawl runs, rejections of its URLs and every stylization "
        "(parameters, weights, timings) of one image.",
    )
    show.add_argument("image", metavar="IMAGE", help="image id or sha256 prefix (4+ digits)")
    add_json(show)
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
        type=non_negative,
        default=DEFAULT_SQL_LIMIT,
        help=f"most rows to print (default {DEFAULT_SQL_LIMIT}; 0 for all)",
    )
    sql.add_argument(
        "--timeout",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="stop the statement after this long (default 60)",
    )
    add_json(sql)
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
        "--batch-size", type=positive, default=10_000, help="rows per batch (default 10000)"
    )
    add_kind(export)
    add_filters(export)
    add_shape(export, default_limit=None)
    export.set_defaults(func=run_export)


def _register_gallery(actions: Any) -> None:
    gallery = actions.add_parser(
        "gallery",
        help="write a static HTML gallery",
        description="Write OUT_DIR/index.html with before/after thumbnails of finished "
        "stylizations, their parameters, source attribution and licence. Works offline.",
    )
    gallery.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    add_filters(gallery, status=False, reason=False)
    gallery.add_argument(
        "--limit",
        type=positive,
        default=DEFAULT_GALLERY_LIMIT,
        help=f"most pairs to show, newest first (default {DEFAULT_GALLERY_LIMIT})",
    )
    gallery.add_argument(
        "--thumb-size", type=positive, default=320, help="thumbnail box in px (default 320)"
    )
    gallery.set_defaults(func=run_gallery)


# ------------------------------------------------------------------ commands


def run_list(args: argparse.Namespace) -> int:
    from pipeline import tables
    from storage.db import open_catalog
    from storage.queries import list_rows

    query = build_query(args, args.kind)
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
    import itertools

    from pipeline import tables
    from pipeline.streamed_output import stream_json, stream_table
    from storage.queries import jsonable
    from storage.readonly_sql import check_reading, sql_engine, stream_query

    check_reading(args.query)  # before opening (and maybe migrating) anything
    engine = sql_engine(get_settings())
    limit = args.limit or None
    with stream_query(engine, args.query, timeout=args.timeout) as result:
        # Rows are printed as they are fetched; one more than --limit tells it was cut.
        rows = itertools.islice(result.rows, None if limit is None else limit + 1)
        counted = _Counted(rows, limit)
        if args.json:
            columns = result.columns
            stream_json(
                {c: jsonable(v) for c, v in zip(columns, row, strict=True)} for row in counted
            )
        else:
            stream_table(result.columns, counted)
    if not args.json:
        truncated = f"; more than --limit {limit}, 0 for all" if counted.truncated else ""
        tables.note(f"{counted.count} rows{truncated}")
    return 0


class _Counted:
    """Rows up to ``limit``, counted; ``truncated`` once a row past the limit was seen."""

    def __init__(self, rows: Any, limit: int | None) -> None:
        self.rows, self.limit, self.count, self.truncated = rows, limit, 0, False

    def __iter__(self) -> Any:
        for row in self.rows:
            if self.limit is not None and self.count == self.limit:
                self.truncated = True
                return
            self.count += 1
            yield row


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
    query = build_query(args, args.kind)
    catalog = open_catalog(get_settings())
    count = export(catalog.engine, query, args.out, fmt=fmt, batch_size=args.batch_size)
    print(f"wrote {count} {query.kind.name} to {args.out}", file=sys.stderr)
    return 0


def run_gallery(args: argparse.Namespace) -> int:
    from pipeline.gallery import write_gallery
    from storage.db import open_catalog
    from storage.models import StylizationStatus

    query = build_query(args, "stylizations", status=(StylizationStatus.DONE.value,))
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
