"""What the spiders hand to the item pipelines.

Every URL a spider considers leaves as exactly one item: an :class:`ImageItem` (the
downloaded bytes and why they matched) or a :class:`RejectedItem` (the reason it was not
kept). The pipelines turn the first into an image sighting or a rejection after
validation, and the second into a rejection row: nothing disappears silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImageItem:
    """An image candidate whose bytes were downloaded."""

    url: str
    page_url: str | None
    source: str
    body: bytes = b""
    keywords: list[str] = field(default_factory=list)
    matches: list[dict[str, str]] = field(default_factory=list)
    relevance: float = 0.0
    licence: str | None = None
    attribution: str | None = None
    content_type: str | None = None
    # Set for downloads that count against --max-images; ``outcome`` is filled in by
    # the catalog pipeline (image, duplicate, near-duplicate or rejected).
    budgeted: bool = False
    outcome: str | None = None

    def summary(self) -> dict[str, Any]:
        """The item without its bytes (for logs and feeds)."""
        return {"url": self.url, "page_url": self.page_url, "source": self.source}


@dataclass
class RejectedItem:
    """A URL that ends without an image, and why (see docs/crawler.md for reasons)."""

    url: str
    page_url: str | None
    reason: str
    detail: str | None = None
    budgeted: bool = False
    outcome: str = "rejected"
