"""`dreamcrawl dream`: dream one image file into another."""

from __future__ import annotations

from typing import Any

from pipeline.commands._pending import register_pending


def register(subparsers: Any) -> None:
    register_pending(subparsers, "dream", "dream one image file into another")
