"""What an operator sees on a run's page in the Prefect UI.

- a progress artifact ("dreamed 12 of 40") that moves while the dreams run;
- a table of counts (found, accepted, rejected by reason, dreamed, failed, timings);
- a markdown summary with before/after thumbnails of the dreams, embedded as base64
  ``data:`` images (the UI blocks ``file://`` links). Each thumbnail is a few KB and a
  run shows at most :data:`MAX_THUMBNAILS` pairs, so the artifact stays small; the
  gallery (``dreamcrawl catalog gallery``) has the rest, linked when
  ``DREAMCRAWL_GALLERY_URL`` says where it is served.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.dreaming import DreamOutcome, DreamStatus
from storage.db import open_catalog
from storage.settings import Settings

if TYPE_CHECKING:
    from flows.tasks import CrawlReport

MAX_THUMBNAILS = 6
THUMBNAIL_PX = 128
ENV_GALLERY_URL = "DREAMCRAWL_GALLERY_URL"
# Prefect sends this logger's records to the API, to the run named by ``flow_run_id``.
RUN_LOG = logging.getLogger("prefect.flow_runs")


class DreamProgress:
    """The progress of a run's dreams, advanced as each one ends.

    It is created in the run the operator started (its artifact and its log lines
    belong on that run's page) and advanced from the sub-flow that computes the dreams,
    through the artifact's id and the run's id.
    """

    def __init__(self, total: int, flow_run_id: str | None, artifact_id: Any = None) -> None:
        self.total = total
        self.flow_run_id = flow_run_id
        self.ended = 0
        self.dreamed = 0
        self.artifact_id = artifact_id or create_progress_artifact(
            0.0, key="dream-progress", description=self._describe()
        )

    def _describe(self) -> str:
        return f"dreamed {self.dreamed} of {self.total} ({self.ended} ended)"

    def advance(self, outcome: DreamOutcome) -> None:
        self.ended += 1
        if outcome.status is DreamStatus.DONE:
            self.dreamed += 1
        percent = 100.0 * self.ended / self.total if self.total else 100.0
        update_progress_artifact(self.artifact_id, percent, description=self._describe())
        self._log(outcome)

    def _log(self, outcome: DreamOutcome) -> None:
        """One line per dream in the started run's log: image, size, preset, time, device."""
        extra = {"flow_run_id": self.flow_run_id} if self.flow_run_id else {}
        image = (outcome.image_sha256 or "?")[:12]
        if outcome.status is DreamStatus.DONE:
            RUN_LOG.info(
                "dreamed image %s (%sx%s) with %s in %.1f s on %s",
                image, outcome.width, outcome.height, outcome.preset,
                outcome.seconds or 0.0, outcome.device, extra=extra,
            )  # fmt: skip
        else:
            RUN_LOG.info(
                "dream #%s (%s) %s%s", outcome.id, outcome.preset, outcome.status,
                f": {outcome.error}" if outcome.error else "", extra=extra,
            )  # fmt: skip


def summarize_dreams(outcomes: list[DreamOutcome], left: int = 0) -> dict[str, Any]:
    """Counts and timings of a batch of dream outcomes."""
    statuses = Counter(o.status for o in outcomes)
    seconds = [o.seconds for o in outcomes if o.seconds is not None]
    return {
        "dreamed": statuses.get(DreamStatus.DONE, 0),
        "failed": statuses.get(DreamStatus.FAILED, 0),
        "skipped": statuses.get(DreamStatus.SKIPPED, 0),
        "cached": statuses.get(DreamStatus.CACHED, 0),
        "left_for_later": left,
        "dream_seconds_total": round(sum(seconds), 3),
        "dream_seconds_max": round(max(seconds), 3) if seconds else 0.0,
    }


def thumbnail_uri(data: bytes, size: int = THUMBNAIL_PX) -> str:
    """A small JPEG of encoded image ``data`` as a ``data:`` URI (a few KB)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _thumbnails(settings: Settings, outcomes: list[DreamOutcome]) -> list[str]:
    """Markdown rows of before/after thumbnails for the first dreams of the run."""
    done = [o for o in outcomes if o.status is DreamStatus.DONE and o.output and o.image_sha256]
    if not done:
        return []
    catalog = open_catalog(settings)
    rows = ["", "| before | after | preset | seconds |", "|---|---|---|---|"]
    for o in done[:MAX_THUMBNAILS]:
        assert o.output is not None and o.image_sha256 is not None
        before = thumbnail_uri(catalog.blobs.read_bytes(o.image_sha256))
        after = thumbnail_uri(catalog.blobs.read_bytes(o.output))
        rows.append(f"| ![before]({before}) | ![after]({after}) | {o.preset} | {o.seconds} |")
    if len(done) > MAX_THUMBNAILS:
        rows.append(f"\n{len(done) - MAX_THUMBNAILS} more in the gallery.")
    return rows


def _crawl_summary(crawl: CrawlReport) -> dict[str, Any]:
    counts = crawl.counts
    summary: dict[str, Any] = {
        "crawl_run": crawl.crawl_run_id,
        "found": counts.get("sightings", 0) + counts.get("rejections", 0),
        "accepted": counts.get("new_images", 0),
        "duplicates": counts.get("duplicates", 0),
        "near_duplicates": counts.get("near_duplicates", 0),
        "rejected": counts.get("rejections", 0),
    }
    for reason, count in sorted(counts.get("rejected", {}).items()):
        summary[f"rejected:{reason}"] = count
    summary["crawl_seconds"] = crawl.seconds
    return summary


def publish_report(
    key: str,
    settings: Settings,
    crawl: CrawlReport | None,
    outcomes: list[DreamOutcome],
    left: int,
) -> dict[str, Any]:
    """Publish the table and markdown artifacts of one run; return the summary row."""
    summary = _crawl_summary(crawl) if crawl is not None else {}
    summary.update(summarize_dreams(outcomes, left))
    create_table_artifact(
        key=f"{key}-counts",
        table=[{"metric": name, "value": value} for name, value in summary.items()],
        description="Found, accepted, duplicates, rejected by reason, dreamed, failed, timings",
    )
    lines = [f"# dreamcrawl {key} run", ""]
    if crawl is not None:
        lines.append(
            f"Crawl run **#{summary['crawl_run']}**: {summary['accepted']} accepted, "
            f"{summary['duplicates']} duplicates, {summary['rejected']} rejected."
        )
    lines.append(
        f"Dreams: **{summary['dreamed']}** new, {summary['failed']} failed, "
        f"{summary['skipped']} already taken, {summary['cached']} from cache"
        + (f", {left} left for a later run." if left else ".")
    )
    lines += _thumbnails(settings, outcomes)
    failed = [o for o in outcomes if o.status is DreamStatus.FAILED]
    if failed:
        lines += ["", "| # | preset | error |", "|---|---|---|"]
        lines += [f"| {o.id} | {o.preset} | {o.error} |" for o in failed]
    gallery = os.environ.get(ENV_GALLERY_URL, "").strip()
    if gallery:
        lines += ["", f"[Open the gallery]({gallery})"]
    create_markdown_artifact(key=f"{key}-summary", markdown="\n".join(lines))
    return summary
