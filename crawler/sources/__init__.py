"""Keyword search sources: small classes that turn a keyword into image results.

A source knows how to ask its API for one page of results and how to read the answer;
the search spider does the downloading, validation and bookkeeping. Adding a source
(Openverse, say) means one class with ``name``, :meth:`~SearchSource.search_url` and
:meth:`~SearchSource.parse`, registered in :data:`SOURCES`.
"""

from __future__ import annotations

from crawler.sources.base import SearchResult, SearchSource
from crawler.sources.commons import WikimediaCommons

SOURCES: dict[str, type[SearchSource]] = {WikimediaCommons.name: WikimediaCommons}

__all__ = ["SOURCES", "SearchResult", "SearchSource", "WikimediaCommons"]
