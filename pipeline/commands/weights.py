"""`dreamcrawl weights`: fetch or describe the InceptionV3 weights."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(subparsers, "weights", "fetch or describe the InceptionV3 weights")
