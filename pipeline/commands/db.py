"""`dreamcrawl db upgrade|current`: manage the catalog's schema with Alembic.

The catalog upgrades itself on first use; ``db upgrade`` exists for operators who want
to migrate ahead of time (e.g. before starting several workers against PostgreSQL).
"""

from __future__ import annotations

import argparse
from typing import Any

from storage.settings import get_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="create or upgrade the catalog's schema")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("upgrade", help="apply every pending migration")
    up.set_defaults(func=run_upgrade)
    cur = actions.add_parser("current", help="print the schema revision of the catalog")
    cur.set_defaults(func=run_current)


def run_upgrade(args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import get_engine

    settings = get_settings()
    settings.ensure_dirs()
    engine = get_engine(settings.db_url)
    before = migrate.current_revision(engine)
    from storage.db import ensure_schema

    ensure_schema(engine)
    after = migrate.current_revision(engine)
    if before == after:
        print(f"catalog already at revision {after} ({engine.url.render_as_string()})")
    else:
        print(f"catalog upgraded {before or 'empty'} -> {after} ({engine.url.render_as_string()})")
    return 0


def run_current(args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import get_engine

    settings = get_settings()
    engine = get_engine(settings.db_url)
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    state = "up to date" if current == head else f"behind head {head}"
    print(f"{current or 'empty'} ({state})")
    return 0
