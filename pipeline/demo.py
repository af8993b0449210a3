"""`dreamcrawl demo`: the whole job, offline, on the bundled demo site.

It serves the demo site on 127.0.0.1, runs the ``pipeline`` flow on it (crawl by
keyword, then dream what was found with a fast preset), writes the gallery, and tells
the user where to look and what to try next. Everything lands in the usual data folder
(``DREAMCRAWL_HOME``), so the catalog commands work on the result straight away.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.demo_site import DEMO_KEYWORDS, serve_demo_site
from storage.settings import get_settings
from stylize.params import DreamParams, Preset

# The fast preset's 5 steps make a preview; 15 make the dream plain to see while the
# whole demo still runs in a few minutes on 2 CPU cores.
DEMO_STEPS = 15


def run_demo(
    out_dir: Path | None = None,
    keywords: Sequence[str] = DEMO_KEYWORDS,
    dream: DreamParams | None = None,
    weights: str | None = None,
) -> dict[str, Any]:
    """Crawl the demo site, dream its images, write the gallery; return what happened."""
    from pipeline.flow_runner import run_flow
    from pipeline.gallery import write_gallery
    from storage.db import open_catalog
    from storage.queries import Filters, Query, get_kind

    dream = dream or DreamParams(presets=[Preset("fast")], steps=DEMO_STEPS)
    settings = get_settings()
    started = time.perf_counter()
    with serve_demo_site() as base_url:
        print(f"demo site on {base_url} — crawling for {', '.join(keywords)}, then dreaming")
        result = run_flow(
            "pipeline",
            {
                "keywords": list(keywords),
                "start_urls": [base_url],
                "allow_private": True,
                "max_images": 20,
                "depth": 2,
                "dream": dream,
                "weights": weights,
            },
        )
    out_dir = Path(out_dir) if out_dir else settings.home / "gallery"
    catalog = open_catalog(settings)
    query = Query(
        get_kind("stylizations"),
        Filters(status=("done",), preset=tuple(str(p) for p in dream.presets)),
    )
    page, pairs = write_gallery(catalog, query, out_dir)
    result.update(gallery=str(page), pairs=pairs, seconds=round(time.perf_counter() - started, 1))
    return result


def print_next_steps(result: dict[str, Any]) -> None:
    """The closing message: what happened, where to look, what to try next."""
    summary = result["summary"]
    print()
    print(
        f"Crawled {summary.get('found', 0)} URLs: {summary.get('accepted', 0)} new images, "
        f"{summary.get('duplicates', 0)} duplicates, {summary.get('rejected', 0)} rejected "
        f"(each with its reason); dreamed {summary.get('dreamed', 0)} "
        f"({summary.get('cached', 0)} from cache) in {result['seconds']} s."
    )
    print(f"Gallery: file://{result['gallery']}  ({result['pairs']} before/after pairs)")
    print()
    print("Try next:")
    print("  dreamcrawl catalog list --kind images          # what the crawl kept")
    print("  dreamcrawl catalog list --kind rejections      # what it refused, and why")
    print("  dreamcrawl dream photo.jpg out.jpg --preset classic")
    print("  dreamcrawl stylize --preset paper-octave --limit 3")
    print("  dreamcrawl catalog sql 'SELECT preset, count(*) FROM v_stylized GROUP BY preset'")
