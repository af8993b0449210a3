"""`dreamcrawl serve`: serve the Prefect deployments (scheduled crawls, on-demand flows)."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(
        subparsers, "serve", "serve the Prefect deployments (scheduled crawls, on-demand flows)"
    )
