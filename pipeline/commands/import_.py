"""`dreamcrawl import`: import the user's own image files into the catalog."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(subparsers, "import", "import the user's own image files into the catalog")
