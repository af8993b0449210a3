"""`dreamcrawl run`: crawl, then stylize, as one Prefect flow."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(subparsers, "run", "crawl, then stylize, as one Prefect flow")
