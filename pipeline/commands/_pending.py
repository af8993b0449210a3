"""A placeholder for subcommands whose feature has not landed yet.

It keeps the CLI's shape stable (DESIGN.md fixes the command names) while telling the
user plainly that the command does nothing yet, with exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from storage.errors import UserError


def register_pending(subparsers: Any, name: str, help_text: str) -> None:
    """Add a subcommand that accepts any arguments and explains it is not available yet."""
    parser = subparsers.add_parser(name, help=f"{help_text} (not available yet)")

    def run(args: argparse.Namespace) -> int:
        raise UserError(f"'{parser.prog}' is not available in this version yet")

    parser.set_defaults(func=run, accepts_any_arguments=True)
