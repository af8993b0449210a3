"""`dreamcrawl db upgrade|downgrade|history|current`: manage the catalog's schema with Alembic.

The catalog upgrades itself on first use; ``db upgrade`` exists for operators who want
to migrate ahead of time (e.g. before starting several workers against PostgreSQL), and
``db downgrade`` to go back to the schema of an older dreamcrawl. The ``alembic`` command
works too from the repository (alembic.ini); these need no checkout.
"""

from __future__ import annotations

import argparse

from storage.settings import get_settings

NAME = "db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("upgrade", help="apply every pending migration")
    up.set_defaults(func=run_upgrade)
    cur = actions.add_parser("current", help="print the schema revision of the catalog")
    cur.set_defaults(func=run_current)
    down = actions.add_parser(
        "downgrade",
        help="revert migrations (default: the newest one)",
        description="Revert the catalog's schema to an older revision. Any later dreamcrawl "
        "command upgrades it again on first use: run the older dreamcrawl against it.",
    )
    down.add_argument(
        "revision", nargs="?", default="-1", help="-N steps, a revision id, or base (default -1)"
    )
    down.add_argument(
        "--yes", action="store_true", help="confirm going to base (drops every catalog table)"
    )
    down.set_defaults(func=run_downgrade)
    hist = actions.add_parser("history", help="list the migrations, newest first")
    hist.set_defaults(func=run_history)


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


def run_downgrade(args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import get_engine
    from storage.errors import UserError

    engine = get_engine(get_settings().db_url)
    before = migrate.current_revision(engine)
    target = migrate.downgrade_target(engine, args.revision)
    if target is None and not args.yes:
        raise UserError(
            f"downgrading {before} to base drops every catalog table and its rows; "
            "add --yes if that is what you want"
        )
    migrate.downgrade(engine, target or "base")
    print(
        f"catalog downgraded {before} -> {target or 'base'} ({engine.url.render_as_string()}); "
        "`dreamcrawl db upgrade` (or any dreamcrawl command) upgrades it again"
    )
    return 0


def run_history(args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import get_engine

    settings = get_settings()
    current = migrate.current_revision(get_engine(settings.db_url))
    head = migrate.head_revision()
    for rev in migrate.history():
        marks = [
            m
            for m, on in (("head", rev.revision == head), ("current", rev.revision == current))
            if on
        ]
        suffix = f"  ({', '.join(marks)})" if marks else ""
        print(f"{rev.down_revision or 'base'} -> {rev.revision}  {rev.doc}{suffix}")
    if current is None:
        print("(the catalog has no schema yet: `dreamcrawl db upgrade` creates it)")
    return 0
