"""Wikimedia Commons: MediaWiki API search in the File namespace.

One request per page of results: ``action=query&generator=search&gsrnamespace=6`` with
``prop=imageinfo&iiprop=url|size|mime|extmetadata``. The licence comes from
``extmetadata.LicenseShortName``, the attribution from ``Attribution`` or ``Artist``
plus ``Credit`` (HTML stripped). ``DREAMCRAWL_COMMONS_API_URL`` points elsewhere for
a mirror, or for the tests' local stand-in.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode

from crawler.sources.base import SearchResult, SearchSource

MAX_PER_REQUEST = 50  # the API's gsrlimit for ordinary clients
_TAG = re.compile(r"<[^>]+>")


def plain(value: Any) -> str:
    """Text of an extmetadata HTML value."""
    return " ".join(html.unescape(_TAG.sub(" ", str(value or ""))).split())


def _meta(info: dict[str, Any], key: str) -> str:
    entry = (info.get("extmetadata") or {}).get(key) or {}
    return plain(entry.get("value") if isinstance(entry, dict) else entry)


class WikimediaCommons(SearchSource):
    name = "commons"

    @property
    def api_url(self) -> str:
        return self.settings.get("DREAMCRAWL_COMMONS_API_URL")

    def allowed_domains(self) -> list[str]:
        media = self.settings.getlist("DREAMCRAWL_COMMONS_MEDIA_DOMAINS")
        return sorted({*super().allowed_domains(), *media})

    def search_url(self, keyword: str, limit: int, cursor: Any = None) -> str:
        params = {
            "action": "query",
            "format": "json",
            "formatversion": "2",
            "generator": "search",
            "gsrsearch": keyword,
            "gsrnamespace": "6",
            "gsrlimit": str(max(1, min(limit, MAX_PER_REQUEST))),
            "prop": "imageinfo",
            "iiprop": "url|size|mime|extmetadata",
        }
        params.update(cursor or {})
        return f"{self.api_url}?{urlencode(params)}"

    def parse(self, payload: Any) -> tuple[list[SearchResult], Any]:
        if "error" in payload:
            error = payload["error"]
            raise ValueError(f"{error.get('code')}: {error.get('info')}")
        pages = (payload.get("query") or {}).get("pages") or []
        if isinstance(pages, dict):  # formatversion=1 answers keyed by page id
            pages = list(pages.values())
        pages = sorted(pages, key=lambda p: p.get("index", 0))
        results = []
        for page in pages:
            infos = page.get("imageinfo") or []
            if not infos or not infos[0].get("url"):
                continue
            info = infos[0]
            title = str(page.get("title", "")).removeprefix("File:")
            credit = _meta(info, "Credit")
            author = _meta(info, "Attribution") or _meta(info, "Artist")
            attribution = "; ".join(p for p in (author, credit and f"credit: {credit}") if p)
            licence = _meta(info, "LicenseShortName") or None
            licence_url = _meta(info, "LicenseUrl")
            if licence and licence_url:
                licence = f"{licence} ({licence_url})"
            results.append(
                SearchResult(
                    url=info["url"],
                    page_url=info.get("descriptionurl"),
                    title=title,
                    texts=[
                        ("title", title.rsplit(".", 1)[0]),
                        ("description", _meta(info, "ImageDescription")),
                        ("description", _meta(info, "ObjectName")),
                        ("categories", _meta(info, "Categories").replace("|", ", ")),
                    ],
                    licence=licence,
                    attribution=attribution or None,
                    mime=info.get("mime"),
                    width=info.get("width"),
                    height=info.get("height"),
                    size=info.get("size"),
                )
            )
        cursor = payload.get("continue")
        return results, ({k: str(v) for k, v in cursor.items()} if cursor else None)
