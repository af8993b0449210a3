"""`dreamcrawl crawl`: crawl sites or a search source for images matching keywords."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(
        subparsers, "crawl", "crawl sites or a search source for images matching keywords"
    )
