"""The interface of a keyword search source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit


@dataclass
class SearchResult:
    """One image a source found for a keyword, with what it says about it."""

    url: str
    page_url: str | None
    title: str
    # (where, text) pairs the keywords are matched against: description, categories…
    texts: list[tuple[str, str]] = field(default_factory=list)
    licence: str | None = None
    attribution: str | None = None
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None


class SearchSource:
    """A search API that answers JSON. Subclasses set ``name`` and read their settings."""

    name: ClassVar[str]

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    @property
    def api_url(self) -> str:
        raise NotImplementedError

    def allowed_domains(self) -> list[str]:
        """Hosts of the API and of the media it links to."""
        host = urlsplit(self.api_url).hostname
        return [host] if host else []

    def search_url(self, keyword: str, limit: int, cursor: Any = None) -> str:
        """The URL of one page of results; ``cursor`` comes from the previous :meth:`parse`."""
        raise NotImplementedError

    def parse(self, payload: Any) -> tuple[list[SearchResult], Any]:
        """Results in a decoded answer, and the cursor of the next page (None: no more)."""
        raise NotImplementedError
