"""`dreamcrawl demo`: the whole job on a bundled local site, offline."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(subparsers, "demo", "the whole job on a bundled local site, offline")
