"""The ``dreamcrawl`` command line.

Each subcommand lives in ``pipeline/commands/<name>.py``: ``NAME``, the first line of
its docstring as its help, an optional ``DESCRIPTION``, ``add_arguments(parser)`` for
its options and ``run(args) -> int`` for the work (commands with actions, such as
``catalog``, give each action's parser its own function instead). Heavy
imports (TensorFlow, Scrapy, Prefect) happen inside ``run`` so that ``--help`` and the
catalog commands start fast.

Exit codes (README, "Commands"): 0 success; 2 bad usage or bad input, one line on stderr;
1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from sqlalchemy import exc as sa_exc

from pipeline.log import setup_logging
from pipeline.quiet_tensorflow import install_if_marked, quiet_tensorflow
from storage.errors import StoreUnavailable, UserError
from storage.version import __version__
from stylize.errors import StylizeError

# Module names under pipeline.commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "dream",
    "crawl",
    "import_",
    "stylize",
    "label",
    "run",
    "catalog",
    "serve",
    "deploy",
    "demo",
    "weights",
    "db",
)

# A process spawned by a quieted dreamcrawl (a flow run under `serve`) re-imports this
# module first: its TensorFlow import is quieted as well.
install_if_marked()

# Commands that read or write blobs: their store is probed before they start, so a bad
# DREAMCRAWL_BLOBS (endpoint, credentials, bucket, refused writes) stops them at once.
BLOB_WRITERS = frozenset({"crawl", "import", "stylize", "run", "serve", "demo"})
BLOB_READERS = frozenset({"check", "gallery"})  # catalog actions

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = OneLineParser(
        prog="dreamcrawl",
        description="Crawl images by keyword, dream them with InceptionV3, query the catalog.",
    )
    parser.add_argument("--version", action="version", version=f"dreamcrawl {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output, TensorFlow's own lines included (-vv for debug)",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=OneLineParser
    )
    subparsers.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"pipeline.commands.{name}")
        command = subparsers.add_parser(
            module.NAME, help=summary(module), description=getattr(module, "DESCRIPTION", None)
        )
        module.add_arguments(command)
        if hasattr(module, "run"):  # commands with actions (catalog, db, weights) set their own
            command.set_defaults(func=module.run)
    return parser


def summary(module: ModuleType) -> str:
    """A command's one-line help: what its module's docstring says it does (the text
    after "`dreamcrawl NAME`: " on the first line), so the two never drift apart."""
    first = (module.__doc__ or "").strip().splitlines()[0]
    return first.split("`: ", 1)[-1].rstrip(".")


def prefect_defaults() -> None:
    """Prefect's safe defaults, set before Prefect is imported (the user's values win).

    No telemetry (the machines this runs on may have no internet) and a start-up timeout
    for the temporary Prefect server that suits 2-core machines.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dreamcrawl`` console script."""
    prefect_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow(args.verbose)  # before any command imports TensorFlow
    setup_logging(args.verbose)
    try:
        action = getattr(args, "catalog_action", None)
        if args.command in BLOB_WRITERS or action in BLOB_READERS:
            from storage import blobstores, db

            db.preflight()  # before flows, servers or crawler processes start
            blobstores.preflight(
                write=args.command in BLOB_WRITERS or getattr(args, "repair", False)
            )
        return int(args.func(args) or EXIT_OK)
    except (UserError, StylizeError) as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"dreamcrawl: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:  # the catalog or blob store is down or full
        message = " ".join(str(exc).split("\n"))
        print(f"dreamcrawl: {message}", file=sys.stderr)
        return EXIT_FAILURE
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:  # server down, disk full
        from storage.db import catalog_failure
        from storage.settings import get_settings

        print(f"dreamcrawl: {catalog_failure(exc, get_settings().db_url)}", file=sys.stderr)
        # Unreachable before anything ran is like a dead S3 at preflight: bad input.
        return EXIT_USAGE if exc.statement is None else EXIT_FAILURE
    except KeyboardInterrupt:
        print("dreamcrawl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
