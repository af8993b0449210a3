"""``dreamcrawl import``: the user's own image files, through the crawler's validation.

Files are read in this process (no Scrapy involved), each through the same validation
and catalog writes as a crawled image, and each ends as an image sighting (``file://``
URL, source ``file``), a duplicate, or a rejection with its reason. Only regular files
are read, bounded while reading: a FIFO, a device or a broken link is a rejection, and
one bad entry never stops the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from crawler.api import CrawlResult, clean_keywords
from crawler.items import Candidate
from crawler.run_lock import lock_run, sweep_dead_runs
from crawler.run_state import run_counts
from crawler.validate import Limits, Rejected, read_regular_file
from crawler.writer import CatalogWriter, NearDuplicates
from storage.db import open_catalog
from storage.errors import UserError
from storage.models import CrawlRun, CrawlStatus, utcnow
from storage.settings import Settings, get_settings


def import_paths(
    paths: Sequence[str | Path],
    keywords: Sequence[str],
    *,
    near_duplicates: NearDuplicates | str = NearDuplicates.KEEP,
    limits: Limits | None = None,
    settings: Settings | None = None,
    labels: bool = True,
) -> CrawlResult:
    """Import image files (folders are walked) as an ``import`` crawl run.

    Files go through the crawler's validation and catalog writes; each ends as an image
    sighting (``file://`` URL, source ``file``), a duplicate, or a rejection.
    """
    from crawler import keywords as kw

    keywords = clean_keywords(keywords)
    try:
        policy = NearDuplicates(near_duplicates)
    except ValueError:
        accepted = ", ".join(NearDuplicates)
        raise UserError(
            f"near-duplicates must be one of {accepted}, got {near_duplicates!r}"
        ) from None
    roots = [Path(p).expanduser().absolute() for p in paths]
    if not roots:
        raise UserError("give at least one file or folder to import")
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        raise UserError(f"no such file or folder: {missing[0]}")
    settings = settings or get_settings()
    catalog = open_catalog(settings)
    sweep_dead_runs(catalog)
    with catalog.session() as session:
        run = CrawlRun(
            kind="import",
            keywords=keywords,
            sources=["file"],
            settings={"paths": [str(p) for p in roots], "near_duplicates": policy.value},
        )
        session.add(run)
        session.flush()
        run_id = int(run.id)
        lock = lock_run(settings, run_id)  # before the row commits (see sweep_dead_runs)
    from crawler.labelling import start_labels

    labeller, _ = start_labels(catalog, labels=labels, content_check=False)
    writer = CatalogWriter(
        catalog, run_id, limits or Limits(), near_duplicates=policy, labels=labeller
    )
    status, error = CrawlStatus.FINISHED, None
    try:
        for path, root in _walk(roots):
            where = [("filename", kw.filename_text(path.name))]
            folders = path.parent.relative_to(root.parent) if path != root else Path()
            where.append(("folder", " ".join(folders.parts)))
            matches, relevance = kw.match(keywords, where)
            candidate = Candidate(
                url=path.as_uri(),
                source="file",
                keywords=tuple(keywords),
                matches=tuple(matches),
                relevance=relevance,
            )
            try:  # read here, once: a FIFO, a device or a broken link is one rejection
                data = read_regular_file(path, writer.limits.max_bytes)
            except Rejected as rejected:
                writer.record_rejection(candidate.url, None, rejected.reason, rejected.detail)
                continue
            writer.record_image(candidate, data)
    except BaseException as exc:
        status = (
            CrawlStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else CrawlStatus.FAILED
        )
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            writer.close()
            counts = run_counts(catalog, run_id)
            if labeller is not None:
                counts["labels"] = labeller.close()
            with catalog.session() as session:
                run = session.get(CrawlRun, run_id)
                assert run is not None
                run.status, run.error, run.finished_at = status, error, utcnow()
                run.counts = counts
        finally:
            os.close(lock)
    return CrawlResult(run_id, status, counts, error)


def _walk(roots: list[Path]) -> Iterable[tuple[Path, Path]]:
    """(file, the root it was found under), sorted, hidden files and folders skipped.

    Every entry that is not a folder is yielded (FIFOs, devices, broken links too), so
    that each ends as an image or a rejection with its reason; links to folders are not
    followed."""
    for root in roots:
        if not root.is_dir():  # a file, or a special file to reject with its reason
            yield root, root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(folder) / name, root
