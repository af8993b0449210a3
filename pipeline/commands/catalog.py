"""`dreamcrawl catalog …`: what analysts and operators ask of the catalog.

``check`` compares catalog rows with the blob store (see storage.integrity). The query
commands (list, show, sql, export, gallery) are listed so the CLI's shape is stable.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipeline.commands._pending import register_pending
from pipeline.config import get_settings

EXIT_PROBLEMS = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("catalog", help="query and check the catalog")
    actions = parser.add_subparsers(dest="catalog_action", metavar="ACTION")
    actions.required = True

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

    for name, text in (
        ("list", "list images and stylizations"),
        ("show", "one image's whole lineage"),
        ("sql", "run a read-only SQL query"),
        ("export", "export to CSV or Parquet"),
        ("gallery", "write a static HTML gallery"),
    ):
        register_pending(actions, name, text)


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
