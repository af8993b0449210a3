"""The crawler's Python entry points, shared by the CLI and the Prefect flows.

- :func:`run_crawl` records a crawl run and runs it in a process of its own
  (``python -m crawler.run``), which can be killed on a timeout and resumed later.
- :func:`import_paths` imports the user's own files through the same validation and
  catalog writes, in this process (no Scrapy involved).

Both raise :class:`~storage.errors.UserError` for bad input, before anything is written.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.items import Candidate
from crawler.progress import parse_line as parse_progress
from crawler.run_state import run_counts
from crawler.validate import Limits
from crawler.writer import CatalogWriter, NearDuplicates
from storage.db import open_catalog
from storage.errors import UserError
from storage.models import CrawlRun, CrawlStatus, utcnow
from storage.settings import ENV_BLOBS, ENV_DB_URL, ENV_HOME, Settings, get_settings

log = logging.getLogger("dreamcrawl.crawler")

SITE = "site"
SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
STDERR_TAIL = 4000
ProgressCallback = Callable[[dict[str, Any]], None]
TERMINATE_GRACE_S = 30.0


@dataclass(frozen=True)
class CrawlResult:
    """How a crawl (or import) run ended, and what its rows count."""

    run_id: int
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def source_names() -> list[str]:
    """Every accepted ``--source`` name."""
    from crawler.sources import SOURCES

    return [SITE, *sorted(SOURCES)]


def _clean_keywords(keywords: Iterable[str]) -> list[str]:
    cleaned = [" ".join(k.split()) for k in keywords]
    if not cleaned or not all(cleaned):
        raise UserError("give at least one non-empty --keyword")
    return list(dict.fromkeys(cleaned))


def parse_overrides(pairs: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["NAME=value", …]`` → ``{NAME: value}``, refusing names no component reads."""
    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, Mapping) else (_split(p) for p in pairs)
    from scrapy.settings import default_settings

    import crawler.settings as ours

    overrides = {}
    for name, value in items:
        if not SETTING_NAME.match(name):
            raise UserError(f"setting names are UPPER_CASE, got {name!r} (use -s NAME=value)")
        if not (hasattr(default_settings, name) or hasattr(ours, name)):
            raise UserError(
                f"unknown setting {name!r}: docs/crawler.md lists the DREAMCRAWL_* settings, "
                "and Scrapy's documentation its own"
            )
        overrides[name] = value
    return overrides


def _split(pair: str) -> tuple[str, str]:
    name, sep, value = pair.partition("=")
    if not sep:
        raise UserError(f"-s takes NAME=value, got {pair!r}")
    return name.strip(), value


def _check_start_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--start-url must be an http(s) URL with a host, got {url!r}")
    return url


@dataclass(frozen=True)
class CrawlRequest:
    """What to crawl: the one type from the CLI flags or the flow form to the run row.

    ``sources`` defaults to ``["site"]`` when ``start_urls`` are given. ``resume`` names
    a crawl run to continue (its stored options are used; the others are ignored).
    """

    keywords: tuple[str, ...] = ()
    start_urls: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    max_images: int | None = None
    depth: int | None = None
    allow_private: bool = False
    resume: int | None = None


def run_crawl(
    request: CrawlRequest | None = None,
    /,
    *,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    timeout: float | None = None,
    prefect_flow_run_id: str | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    **fields: Any,
) -> CrawlResult:
    """Crawl sites and/or search sources for images matching the request's keywords.

    Give a :class:`CrawlRequest`, or its fields as keywords (``keywords=["cat"], …``).
    ``overrides`` are Scrapy or DREAMCRAWL_* settings (``NAME=value``). ``timeout``
    seconds, if given, stop the crawl gracefully; the run is then ``interrupted`` and
    can be resumed. ``on_progress`` receives the crawl's counts every few seconds
    while it runs (pages, images, duplicates, rejected).
    """
    if request is None:
        sequences = ("keywords", "start_urls", "sources")
        request = CrawlRequest(
            **{k: tuple(v or ()) if k in sequences else v for k, v in fields.items()}
        )
    elif fields:
        raise TypeError(f"give a CrawlRequest or its fields, not both: {sorted(fields)}")
    settings = settings or get_settings()
    catalog = open_catalog(settings)
    if request.resume is not None:
        run_id = _reopen(catalog, request.resume, prefect_flow_run_id)
    else:
        run_id = create_run(
            catalog, request, overrides=overrides, prefect_flow_run_id=prefect_flow_run_id
        )
    return _run_process(catalog, run_id, timeout, on_progress)


def crawl(
    keywords: Sequence[str],
    *,
    start_urls: Sequence[str] = (),
    sources: Sequence[str] = (),
    max_images: int | None = None,
    depth: int | None = None,
    allow_private: bool = False,
    settings: Settings | None = None,
) -> CrawlResult:
    """Crawl for ``keywords`` from ``start_urls`` (sites) or ``sources`` (e.g. commons).

    The notebook form of ``dreamcrawl crawl``: images go into the catalog of
    ``settings`` (default: DREAMCRAWL_HOME / DREAMCRAWL_DB_URL) and the result has the
    run's id, status and counts.
    """
    request = CrawlRequest(
        tuple(keywords), tuple(start_urls), tuple(sources), max_images, depth, allow_private
    )
    return run_crawl(request, settings=settings)


def create_run(
    catalog: Any,
    request: CrawlRequest,
    *,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    prefect_flow_run_id: str | None = None,
) -> int:
    """Validate a crawl request and record it as a ``running`` crawl run; return its id.

    Shared by :func:`run_crawl` and a plain ``scrapy crawl`` (crawler.standalone), so a
    run reads the same in the catalog whichever tool started it.
    """
    return _create(
        catalog,
        keywords=_clean_keywords(request.keywords),
        start_urls=[_check_start_url(u) for u in request.start_urls],
        sources=list(request.sources),
        max_images=request.max_images,
        depth=request.depth,
        allow_private=request.allow_private,
        overrides=parse_overrides(overrides),
        prefect_flow_run_id=prefect_flow_run_id,
    )


def _create(catalog: Any, *, keywords: list[str], start_urls: list[str], sources: list[str],
            max_images: int | None, depth: int | None, allow_private: bool,
            overrides: dict[str, Any], prefect_flow_run_id: str | None) -> int:  # fmt: skip
    sources = list(dict.fromkeys(sources or ([SITE] if start_urls else [])))
    if not sources:
        raise UserError("give --start-url URL (crawl a site) or --source NAME (search)")
    unknown = [s for s in sources if s not in source_names()]
    if unknown:
        raise UserError(f"unknown source {unknown[0]!r}; accepted: {', '.join(source_names())}")
    if SITE in sources and not start_urls:
        raise UserError("the 'site' source needs at least one --start-url")
    if max_images is not None and max_images < 0:
        raise UserError(f"--max-images must be 0 (no limit) or more, got {max_images}")
    if depth is not None and depth < 0:
        raise UserError(f"--depth must be 0 or more, got {depth}")
    config = {
        "start_urls": start_urls,
        "depth": depth,
        "max_images": max_images,
        "allow_private": allow_private,
        "overrides": overrides,
    }
    with catalog.session() as session:
        run = CrawlRun(
            kind="crawl",
            keywords=keywords,
            sources=sources,
            settings=config,
            status=CrawlStatus.RUNNING,
            prefect_flow_run_id=prefect_flow_run_id,
        )
        session.add(run)
        session.flush()
        return int(run.id)


def _reopen(catalog: Any, run_id: int, prefect_flow_run_id: str | None) -> int:
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or run.kind != "crawl":
            raise UserError(f"there is no crawl run {run_id} to resume")
        if run.status == CrawlStatus.FINISHED:
            raise UserError(f"crawl run {run_id} already finished; start a new crawl instead")
        run.status = CrawlStatus.RUNNING
        run.finished_at = None
        run.error = None
        if prefect_flow_run_id:
            run.prefect_flow_run_id = prefect_flow_run_id
    return run_id


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_HOME] = str(settings.home)
    env[ENV_DB_URL] = settings.db_url
    env[ENV_BLOBS] = settings.blobs
    return env


def _run_process(
    catalog: Any, run_id: int, timeout: float | None, on_progress: ProgressCallback | None
) -> CrawlResult:
    command = [sys.executable, "-m", "crawler.run", str(run_id)]
    log.info("crawl run %s: starting %s", run_id, " ".join(command))
    child = subprocess.Popen(
        command, env=_child_env(catalog.settings), stderr=subprocess.PIPE, text=True
    )
    tail: deque[str] = deque(maxlen=200)
    reader = threading.Thread(
        target=_read_stderr, args=(child, tail, on_progress), name="crawl-stderr", daemon=True
    )
    reader.start()
    stopped = None
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stopped = f"stopped after the {timeout:g} s timeout"
        child.send_signal(signal.SIGTERM)  # Scrapy's graceful shutdown
        try:
            child.wait(timeout=TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    reader.join()
    return _settle(catalog, run_id, child.returncode, "".join(tail), stopped)


def _read_stderr(
    child: subprocess.Popen, tail: deque[str], on_progress: ProgressCallback | None
) -> None:
    """Hand progress lines to ``on_progress``; keep the last other lines for errors."""
    assert child.stderr is not None
    for line in child.stderr:
        counts = parse_progress(line)
        if counts is None:
            tail.append(line)
        elif on_progress is not None:
            try:
                on_progress(counts)
            except Exception:  # a reporting problem must not stop the crawl
                log.exception("progress callback failed")


def _settle(
    catalog: Any, run_id: int, returncode: int, stderr: str, stopped: str | None
) -> CrawlResult:
    """Make the run row tell the truth about how the crawler process ended."""
    counts = run_counts(catalog, run_id)  # before the write transaction: SQLite has one
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        if run.status == CrawlStatus.RUNNING or stopped:
            if stopped or returncode < 0:
                run.status = CrawlStatus.INTERRUPTED
                run.error = stopped or f"crawler process killed by signal {-returncode}"
            else:
                run.status = CrawlStatus.FAILED
                run.error = stderr.strip()[-STDERR_TAIL:] or f"crawler exited with {returncode}"
            run.finished_at = utcnow()
            run.counts = {**counts, "process": run.counts.get("process")}
        return CrawlResult(run_id, run.status, dict(run.counts), run.error)


def import_paths(
    paths: Sequence[str | Path],
    keywords: Sequence[str],
    *,
    near_duplicates: NearDuplicates | str = NearDuplicates.KEEP,
    limits: Limits | None = None,
    settings: Settings | None = None,
) -> CrawlResult:
    """Import image files (folders are walked) as an ``import`` crawl run.

    Files go through the crawler's validation and catalog writes; each ends as an image
    sighting (``file://`` URL, source ``file``), a duplicate, or a rejection.
    """
    from crawler import keywords as kw

    keywords = _clean_keywords(keywords)
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
    writer = CatalogWriter(catalog, run_id, limits or Limits(), near_duplicates=policy)
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
            writer.record_image(candidate, path)
    except BaseException as exc:
        status = (
            CrawlStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else CrawlStatus.FAILED
        )
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        writer.close()
        counts = run_counts(catalog, run_id)
        with catalog.session() as session:
            run = session.get(CrawlRun, run_id)
            assert run is not None
            run.status, run.error, run.finished_at = status, error, utcnow()
            run.counts = counts
    return CrawlResult(run_id, status, counts, error)


def _walk(roots: list[Path]) -> Iterable[tuple[Path, Path]]:
    """(file, the root it was found under), sorted, hidden files and folders skipped."""
    for root in roots:
        if root.is_file():
            yield root, root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(folder) / name, root
