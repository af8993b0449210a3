"""`dreamcrawl stylize`: dream catalog images not yet dreamed with the given parameters."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(
        subparsers, "stylize", "dream catalog images not yet dreamed with the given parameters"
    )
