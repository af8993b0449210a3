"""Run reports published as Prefect artifacts: a table of counts and a markdown summary."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from storage.blobs import BlobStore


def summarize_dreams(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and timings of a batch of dream outcomes."""
    statuses = Counter(o["status"] for o in outcomes)
    seconds = [o["seconds"] for o in outcomes if o.get("seconds") is not None]
    return {
        "dreamed": statuses.get("done", 0),
        "failed": statuses.get("failed", 0),
        "skipped": statuses.get("skipped", 0),
        "cached": statuses.get("cached", 0),
        "dream_seconds_total": round(sum(seconds), 3),
        "dream_seconds_max": round(max(seconds), 3) if seconds else 0.0,
    }


def publish_report(
    key: str, crawl: dict[str, Any] | None, outcomes: list[dict[str, Any]], blobs: BlobStore
) -> dict[str, Any]:
    """Publish the table and markdown artifacts of one run; return the summary row."""
    summary: dict[str, Any] = {}
    if crawl is not None:
        counts = crawl.get("counts", {})
        rejected = counts.get("rejected", {})
        summary.update(
            {
                "crawl_run": crawl.get("crawl_run_id"),
                "found": counts.get("sightings", 0) + counts.get("rejections", 0),
                "accepted": counts.get("new_images", 0),
                "duplicates": counts.get("duplicates", 0),
                "near_duplicates": counts.get("near_duplicates", 0),
                "rejected": counts.get("rejections", 0),
            }
        )
        for reason, count in sorted(rejected.items()):
            summary[f"rejected:{reason}"] = count
        summary["crawl_seconds"] = crawl.get("seconds")
    summary.update(summarize_dreams(outcomes))
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
        f"{summary['skipped']} already taken, {summary['cached']} from cache."
    )
    lines += ["", "| # | preset | status | seconds | output |", "|---|---|---|---|---|"]
    for o in outcomes:
        output = o.get("output")
        link = f"[{output[:12]}]({blobs.url(output)})" if output else ""
        detail = o.get("error", "")
        lines.append(
            f"| {o['id']} | {o['preset']} | {o['status']} {detail} | {o.get('seconds', '')} "
            f"| {link} |"
        )
    create_markdown_artifact(key=f"{key}-summary", markdown="\n".join(lines))
    return summary
