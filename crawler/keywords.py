"""Keyword relevance: which keyword matched where, and a score from 0 to 1.

A keyword matches a text as a whole word or phrase, case-insensitively, plurals
included ("cat" matches "Cats on a sofa"). Places weigh differently: the alt text or a
figure caption describes the image itself, the page title only its surroundings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TypedDict
from urllib.parse import unquote, urlsplit

# How strongly a match in each place says the image shows the keyword.
WEIGHTS: dict[str, float] = {
    "alt": 3.0,
    "figcaption": 3.0,
    "search": 3.0,
    "title": 2.0,
    "filename": 2.0,
    "link-text": 2.0,
    "description": 2.0,
    "og": 1.5,
    "nearby": 1.0,
    "page-title": 1.0,
    "categories": 1.0,
    "folder": 1.0,
}
FULL_SCORE = 3.0  # a keyword matched this strongly scores 1
MAX_TEXT = 200


def normalize(text: str) -> str:
    """Lowercase words separated by single spaces (punctuation, _ and - become spaces)."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


@lru_cache(maxsize=256)
def _pattern(keyword: str) -> re.Pattern[str]:
    words = normalize(keyword).split()
    phrase = r"\s+".join(re.escape(w) for w in words)
    return re.compile(rf"\b{phrase}(?:s|es)?\b")


def filename_text(url: str) -> str:
    """The words of a URL's file name: ``/img/grey-cat_01.jpg`` → ``grey cat 01``."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return normalize(name.rsplit(".", 1)[0])


class Match(TypedDict):
    """One keyword found in one place (stored as is in ``sightings.matches``)."""

    keyword: str
    where: str  # alt, caption, filename, page-title, link-text, search…
    text: str


def match(
    keywords: Sequence[str], places: Iterable[tuple[str, str | None]]
) -> tuple[list[Match], float]:
    """Match ``keywords`` against (where, text) pairs; return (matches, relevance)."""
    matches: list[Match] = []
    best: dict[str, float] = {}
    normalized = [(where, text, normalize(text)) for where, text in places if text and text.strip()]
    for keyword in keywords:
        pattern = _pattern(keyword)
        if not normalize(keyword):
            continue
        score = 0.0
        for where, text, words in normalized:
            if pattern.search(words):
                matches.append(
                    {"keyword": keyword, "where": where, "text": " ".join(text.split())[:MAX_TEXT]}
                )
                score += WEIGHTS.get(where, 1.0)
        best[keyword] = min(1.0, score / FULL_SCORE)
    relevance = sum(best.values()) / len(best) if best else 0.0
    return matches, round(relevance, 4)
