"""What ``dreamcrawl catalog list|export|gallery`` may ask for, checked before any SQL.

The kinds of rows a listing can show (each one a documented view, storage/views.py),
the filters, and their validation: a bad filter, column or sort key is a
:class:`~storage.errors.UserError` that names what is accepted (exit code 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from storage.errors import UserError
from storage.models import CrawlStatus, ImageStatus, StylizationStatus
from storage.views import V_CRAWL_RUNS, V_IMAGES, V_LABELS, V_REJECTIONS, V_STYLIZED, View

# The layer names themselves belong to the stylizer (stylize.params.Layer); the CLI
# offers those as choices. Here a name only has to be a plain word, for safe LIKE SQL.
LAYER_NAME = re.compile(r"^[a-z0-9]+$")


def _values(holder: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in holder)


@dataclass(frozen=True)
class Kind:
    """One thing ``catalog list`` can list: its view, statuses and defaults."""

    name: str
    view: View
    id_column: str
    date_column: str
    statuses: tuple[str, ...]
    filters: frozenset[str]
    table_columns: tuple[str, ...]  # what the table shows without --columns


IMAGE_FILTERS = frozenset(
    {"keyword", "source", "preset", "layer", "since", "until", "status", "run", "image"}
    | {"label", "label_of"}
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "stylizations",
            V_STYLIZED,
            "stylization_id",
            "created_at",
            _values(StylizationStatus),
            IMAGE_FILTERS,
            (
                "stylization_id",
                "image_id",
                "status",
                "preset",
                "layers",
                "octaves",
                "steps",
                "total_seconds",
                "keywords",
                "created_at",
                "held_by",
                "held_until",
            ),
        ),
        Kind(
            "images",
            V_IMAGES,
            "image_id",
            "created_at",
            _values(ImageStatus),
            IMAGE_FILTERS,
            (
                "image_id",
                "sha256",
                "width",
                "height",
                "format",
                "status",
                "first_source",
                "keywords",
                "stylizations_done",
                "created_at",
            ),
        ),
        Kind(
            "runs",
            V_CRAWL_RUNS,
            "crawl_run_id",
            "started_at",
            _values(CrawlStatus),
            frozenset({"keyword", "source", "since", "until", "status", "run"}),
            (
                "crawl_run_id",
                "kind",
                "status",
                "keywords",
                "started_at",
                "duration_seconds",
                "images",
                "rejections",
            ),
        ),
        Kind(
            "rejections",
            V_REJECTIONS,
            "rejection_id",
            "created_at",
            (),
            frozenset({"keyword", "since", "until", "run", "reason"}),
            ("rejection_id", "crawl_run_id", "reason", "url", "created_at"),
        ),
        Kind(
            "labels",
            V_LABELS,
            "label_id",
            "labelled_at",
            (),
            frozenset({"keyword", "source", "since", "until", "run", "image", "label", "label_of"}),
            ("image_id", "rank", "name", "score", "wnid", "first_source", "keywords"),
        ),
    )
}
# Kinds whose rows belong to one image (their view has an image_id column).
IMAGE_KINDS = ("stylizations", "images", "labels")

FILTER_OPTIONS = {
    "keyword": "--keyword",
    "source": "--source",
    "preset": "--preset",
    "layer": "--layer",
    "since": "--since",
    "until": "--until",
    "status": "--status",
    "run": "--run",
    "reason": "--reason",
    "image": "--image",
    "label": "--label",
    "label_of": "--label-of",
}


@dataclass(frozen=True)
class Filters:
    """What to keep. Values of one option are alternatives (OR); options combine (AND)."""

    keyword: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    preset: tuple[str, ...] = ()
    layer: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    reason: tuple[str, ...] = ()
    run: tuple[int, ...] = ()
    image: tuple[int, ...] = ()
    label: tuple[str, ...] = ()  # class names or WordNet ids
    label_of: tuple[str, ...] = ()  # WordNet ids of the classes under a keyword
    since: datetime | None = None
    until: datetime | None = None

    def used(self) -> list[str]:
        return [name for name in FILTER_OPTIONS if getattr(self, name) not in ((), None)]


@dataclass(frozen=True)
class Query:
    """A validated listing: which kind, filters, columns, order and how many rows."""

    kind: Kind
    filters: Filters = field(default_factory=Filters)
    columns: tuple[str, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()  # (column, descending)
    limit: int | None = None


# ------------------------------------------------------------------ validation


def parse_when(text: str, option: str, *, end_of_day: bool = False) -> datetime:
    """A UTC datetime from ``2024-05-31`` or ``2024-05-31T14:00[:SS][+02:00]``.

    A bare date given to ``--until`` means the end of that day (inclusive).
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"bad {option} value {text!r}: use a date like 2024-05-31 or a UTC time like "
            "2024-05-31T14:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"unknown kind {name!r}: use one of {', '.join(KINDS)}") from None


def check_filters(kind: Kind, filters: Filters) -> None:
    """Refuse filters that do not apply to ``kind`` or name unknown values."""
    for name in filters.used():
        if name not in kind.filters:
            applies = [k.name for k in KINDS.values() if name in k.filters]
            raise UserError(
                f"{FILTER_OPTIONS[name]} does not apply to {kind.name} "
                f"(it applies to: {', '.join(applies)})"
            )
    for status in filters.status:
        if status not in kind.statuses:
            raise UserError(
                f"unknown --status {status!r} for {kind.name}: use one of "
                f"{', '.join(kind.statuses)}"
            )
    for layer in filters.layer:
        if not LAYER_NAME.match(layer):
            raise UserError(f"unknown --layer {layer!r}: a layer is named like mixed4")
    if filters.since and filters.until and filters.since >= filters.until:
        raise UserError("--since must be earlier than --until")


def parse_columns(kind: Kind, text: str | None, option: str = "--columns") -> tuple[str, ...]:
    """Validate a comma-separated column list against the kind's view."""
    if text is None:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UserError(f"{option} is empty: name at least one column")
    for name in names:
        if name not in kind.view.column_names:
            raise UserError(
                f"unknown column {name!r} in {option} for {kind.name}: use one of "
                f"{', '.join(kind.view.column_names)}"
            )
    return names


def parse_sort(kind: Kind, text: str | None) -> tuple[tuple[str, bool], ...]:
    """``col`` or ``col:desc`` (comma-separated); default: newest first."""
    if not text:
        return ((kind.date_column, True), (kind.id_column, True))
    keys: list[tuple[str, bool]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, direction = part.partition(":")
        direction = direction.lower() or "asc"
        if direction not in ("asc", "desc"):
            raise UserError(f"bad --sort direction {direction!r} in {part!r}: use asc or desc")
        parse_columns(kind, name, "--sort")
        keys.append((name, direction == "desc"))
    if not keys:
        raise UserError("--sort is empty: name at least one column")
    if kind.id_column not in {name for name, _ in keys}:
        keys.append((kind.id_column, keys[-1][1]))  # a stable order between equal rows
    return tuple(keys)


# ------------------------------------------------------------------ values


def as_utc(value: datetime) -> datetime:
    """SQLite hands back the UTC wall clock without a zone; PostgreSQL a zoned time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def jsonable(value: Any) -> Any:
    """A value as JSON output shows it: UTC ISO timestamps, plain numbers and text."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
