"""What the spiders hand to the item pipelines, and the one type of an image candidate.

A :class:`Candidate` is born where a URL is first considered (a page's ``<img>``, a
search result, a file on disk) and travels unchanged to the catalog row: the spider's
request carries it, the item wraps it, the writer turns it into a sighting or rejection
row. Every URL a spider considers leaves as exactly one item: an :class:`ImageItem` (the
downloaded bytes) or a :class:`RejectedItem` (the reason it was not kept). Nothing
disappears silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from crawler.keywords import Match
from storage.models import utcnow


class OutcomeKind(StrEnum):
    """What became of one URL (the crawl's counters are named after these)."""

    IMAGE = "image"  # a new image
    DUPLICATE = "duplicate"  # an exact copy of a known image: another sighting of it
    NEAR_DUPLICATE = "near-duplicate"  # kept, flagged as perceptually close to another
    REJECTED = "rejected"  # not kept; the rejection row says why


@dataclass(frozen=True)
class Candidate:
    """Where an image was found and why it matched."""

    url: str
    page_url: str | None = None
    source: str = ""
    keywords: tuple[str, ...] = ()
    matches: tuple[Match, ...] = ()
    relevance: float = 0.0
    licence: str | None = None
    attribution: str | None = None

    def matched(self, keywords: list[str]) -> Candidate:
        """This candidate with the keywords it matched (all of them when none matched
        by text: a search result was still found by searching for every keyword)."""
        found = {m["keyword"] for m in self.matches}
        return dataclasses.replace(
            self, keywords=tuple(k for k in keywords if k in found) or tuple(keywords)
        )

    def sighting_row(
        self, image_id: int, run_id: int, *, duplicate: bool, near_duplicate: bool
    ) -> dict[str, Any]:
        """The ``sightings`` row of this candidate, seen as image ``image_id``."""
        return {
            "image_id": image_id,
            "crawl_run_id": run_id,
            "url": self.url,
            "page_url": self.page_url,
            "source": self.source,
            "keywords": list(self.keywords),
            "matches": [dict(m) for m in self.matches],
            "relevance": self.relevance,
            "duplicate": duplicate,
            "near_duplicate": near_duplicate,
            "licence": self.licence,
            "attribution": self.attribution,
            "fetched_at": utcnow(),
        }

    def rejection_row(
        self, run_id: int, reason: str, detail: str | None, at: datetime
    ) -> dict[str, Any]:
        """The ``rejections`` row of this candidate."""
        return {
            "crawl_run_id": run_id,
            "url": self.url,
            "page_url": self.page_url,
            "reason": reason,
            "detail": (detail or "")[:2000] or None,
            "created_at": at,
        }


@dataclass
class ImageItem:
    """A candidate whose bytes were downloaded."""

    candidate: Candidate
    body: bytes = b""
    content_type: str | None = None
    # Set for downloads that count against --max-images; ``outcome`` is filled in by
    # the catalog pipeline.
    budgeted: bool = False
    outcome: OutcomeKind | None = None

    def summary(self) -> dict[str, Any]:
        """The item without its bytes (for logs and feeds)."""
        c = self.candidate
        return {"url": c.url, "page_url": c.page_url, "source": c.source}


@dataclass
class RejectedItem:
    """A URL that ends without an image, and why (see docs/crawler.md for reasons)."""

    candidate: Candidate
    reason: str
    detail: str | None = None
    budgeted: bool = False
    outcome: OutcomeKind = field(default=OutcomeKind.REJECTED)
