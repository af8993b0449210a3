"""How the catalog commands print: aligned rich tables for people, JSON for scripts.

Tables go to stdout; a one-line summary ("12 stylizations") goes to stderr so that
piping a table into another tool keeps only the rows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from storage.queries import as_utc, jsonable

# The dream parameters v_stylized spells out, in the order the tables and gallery show them.
PARAM_COLUMNS = (
    "preset",
    "layers",
    "channel",
    "octaves",
    "octave_scale",
    "steps",
    "step_size",
    "tile",
    "seed",
)

MAX_CELL = 80


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # A pipe gets a wide page instead of rich's 80 columns, so rows stay on one line.
    width = None if stream.isatty() else 240
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def cell(value: Any) -> str:
    """A value as a table cell shows it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.4g}"
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def print_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    table = Table(header_style="bold")
    for name in columns:
        numeric = bool(rows) and all(
            isinstance(r.get(name), int | float) or r.get(name) is None for r in rows
        )
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(cell(row.get(name)) for name in columns))
    _console().print(table)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=jsonable, ensure_ascii=False)
    sys.stdout.write("\n")


def note(text: str) -> None:
    print(text, file=sys.stderr)


def _pairs(title: str, data: Mapping[str, Any], keys: Sequence[str] | None = None) -> Table:
    table = Table(title=title, show_header=False, title_justify="left", box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in keys or list(data):
        value = data.get(key)
        if value not in (None, "", [], {}):
            table.add_row(key, _short(value))
    return table


def _short(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return cell(value) if not isinstance(value, str) else value


def print_lineage(data: Mapping[str, Any]) -> None:
    """The text form of ``catalog show``."""
    console = _console()
    image = data["image"]
    console.print(_pairs(f"image {image['image_id']}  {image['sha256']}", image))
    for title, rows, columns in (
        (
            "sightings",
            data["sightings"],
            ("id", "crawl_run_id", "fetched_at", "source", "keywords", "url", "licence"),
        ),
        ("crawl runs", data["crawl_runs"], ("id", "kind", "status", "keywords", "started_at")),
        ("rejections of its URLs", data["rejections"], ("crawl_run_id", "reason", "url")),
        ("labels", data.get("labels", []), ("labeller", "rank", "name", "wnid", "score")),
    ):
        console.print()
        if not rows:
            console.print(f"[bold]{title}[/bold]: none")
            continue
        table = Table(title=title, title_justify="left", header_style="bold")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(_short(row.get(name)) for name in columns))
        console.print(table)
        for row in rows:
            for match in row.get("matches") or []:
                if isinstance(match, dict):
                    console.print(
                        f"  sighting {row['id']} matched {match.get('keyword')!r} in "
                        f"{match.get('where')}: {match.get('text')!r}"
                    )
    console.print()
    if not data["stylizations"]:
        console.print("[bold]stylizations[/bold]: none")
    for st in data["stylizations"]:
        console.print(
            _pairs(
                f"stylization {st['stylization_id']} ({st['status']})",
                st,
                (
                    *PARAM_COLUMNS,
                    "params",
                    "weights_id",
                    "weights_sha256",
                    "code_version",
                    "device",
                    "octave_timings",
                    "total_seconds",
                    "duration_seconds",
                    "objective_values",
                    "started_at",
                    "finished_at",
                    "output_path",
                    "output_sha256",
                    "error",
                    "prefect_flow_run_id",
                    "held_by",
                    "held_until",
                ),
            )
        )
