"""The analyst queries behind ``dreamcrawl catalog list|show|export|gallery``.

Every listing reads one of the documented views (storage/views.py), so what the CLI
prints, what an export holds and what an analyst gets from SQL are the same columns.
Filters are validated here, before any SQL runs, and a bad one is a
:class:`~pipeline.errors.UserError` that names what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import UserError
from storage.models import CrawlStatus, ImageStatus, StylizationStatus
from storage.views import V_CRAWL_RUNS, V_IMAGES, V_REJECTIONS, V_STYLIZED, View

LAYERS = tuple(f"mixed{i}" for i in range(11))


def _values(holder: type) -> tuple[str, ...]:
    return tuple(v for k, v in vars(holder).items() if k.isupper())


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


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "stylizations",
            V_STYLIZED,
            "stylization_id",
            "created_at",
            _values(StylizationStatus),
            frozenset(
                {"keyword", "source", "preset", "layer", "since", "until", "status", "run", "image"}
            ),
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
            ),
        ),
        Kind(
            "images",
            V_IMAGES,
            "image_id",
            "created_at",
            _values(ImageStatus),
            frozenset(
                {"keyword", "source", "preset", "layer", "since", "until", "status", "run", "image"}
            ),
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
    )
}

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
        if layer not in LAYERS:
            raise UserError(f"unknown --layer {layer!r}: use one of {', '.join(LAYERS)}")
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


# ------------------------------------------------------------------ SQL building


def _keyword_exists(dialect: str, table: str, where: str) -> str:
    alias = "s" if table == "sightings" else "r"
    if dialect == "postgresql":
        each = f"json_array_elements_text({alias}.keywords) AS kw(value)"
    else:
        each = f"json_each({alias}.keywords) AS kw"
    return (
        f"EXISTS (SELECT 1 FROM {table} {alias} CROSS JOIN {each} "
        f"WHERE {where} AND lower(kw.value) IN :{{p}})"
    )


def _run_sources_exists(dialect: str) -> str:
    each = (
        "json_array_elements_text(r.sources) AS e(value)"
        if dialect == "postgresql"
        else "json_each(r.sources) AS e"
    )
    return (
        f"EXISTS (SELECT 1 FROM crawl_runs r CROSS JOIN {each} "
        "WHERE r.id = v.crawl_run_id AND e.value IN :{p})"
    )


def _layer_clause(view_layers: str) -> str:
    # Layers are validated names (mixed0..mixed10), so LIKE needs no escaping.
    return f"(',' || {view_layers} || ',') LIKE :{{p}}"


def _filter_sql(kind: Kind, name: str, dialect: str) -> str:
    """SQL template for one filter on ``kind``; ``{p}`` is its bound parameter."""
    image_kinds = kind.name in ("stylizations", "images")
    if name == "keyword":
        if image_kinds:
            return _keyword_exists(dialect, "sightings", "s.image_id = v.image_id")
        return _keyword_exists(dialect, "crawl_runs", "r.id = v.crawl_run_id")
    # In a correlated EXISTS, "+col" (SQLite) keeps the planner on the image_id index
    # instead of scanning a column's own index once per outer row.
    plus = "+" if dialect == "sqlite" else ""
    if name == "source":
        if image_kinds:
            return (
                "EXISTS (SELECT 1 FROM sightings s "
                f"WHERE s.image_id = v.image_id AND {plus}s.source IN :{{p}})"
            )
        return _run_sources_exists(dialect)
    if name == "preset":
        if kind.name == "stylizations":
            return "v.preset IN :{p}"
        return (
            "EXISTS (SELECT 1 FROM stylizations st "
            f"WHERE st.image_id = v.image_id AND {plus}st.preset IN :{{p}})"
        )
    if name == "layer":
        if kind.name == "stylizations":
            return _layer_clause("v.layers")
        return (
            "EXISTS (SELECT 1 FROM v_stylized vs WHERE vs.image_id = v.image_id AND "
            f"{_layer_clause('vs.layers')})"
        )
    if name == "status":
        return "v.status IN :{p}"
    if name == "reason":
        return "v.reason IN :{p}"
    if name == "run":
        if image_kinds:
            # Driven from the run's sightings: a run is small next to the catalog.
            return "v.image_id IN (SELECT s.image_id FROM sightings s WHERE s.crawl_run_id IN :{p})"
        return "v.crawl_run_id IN :{p}"
    if name == "image":
        return "v.image_id IN :{p}"
    if name == "since":
        return f"v.{kind.date_column} >= :{{p}}"
    if name == "until":
        return f"v.{kind.date_column} < :{{p}}"
    raise AssertionError(name)


def build_select(
    query: Query,
    dialect: str,
    *,
    columns: Sequence[str] | None = None,
    keyword_texts: Sequence[str] | None = None,
) -> Any:
    """The ``TextClause`` of a listing, typed so that timestamps come back as datetimes.

    ``keyword_texts`` (from :func:`plan_keywords`) switches the keyword filter from a
    row-by-row check to a lookup of those exact ``sightings.keywords`` values in their
    index. With a limit, the filtered, sorted ids are found first and the (costly)
    view columns computed for those rows only.
    """
    kind, filters = query.kind, query.filters
    names = tuple(columns or query.columns or kind.view.column_names)
    clauses: list[str] = []
    params: list[sa.BindParameter[Any]] = []
    by_index = keyword_texts is not None and kind.name in ("stylizations", "images")
    for i, name in enumerate(filters.used()):
        param = f"f{i}"
        value = getattr(filters, name)
        if name == "layer":
            # OR of LIKE clauses, one per layer.
            parts = []
            for j, layer in enumerate(value):
                sub = f"{param}_{j}"
                parts.append(_filter_sql(kind, name, dialect).format(p=sub))
                params.append(sa.bindparam(sub, f"%,{layer},%"))
            clauses.append("(" + " OR ".join(parts) + ")")
            continue
        if name == "keyword" and by_index:
            clauses.append(
                "v.image_id IN (SELECT s.image_id FROM sightings s "
                f"WHERE CAST(s.keywords AS TEXT) IN :{param})"
            )
            texts = list(keyword_texts or ())
            params.append(sa.bindparam(param, texts, type_=sa.String(), expanding=True))
            continue
        clauses.append(_filter_sql(kind, name, dialect).format(p=param))
        if name in ("since", "until"):
            params.append(sa.bindparam(param, value, type_=sa.DateTime(timezone=True)))
        else:
            if name == "keyword":
                value = tuple(v.lower() for v in value)
            params.append(sa.bindparam(param, list(value), expanding=True))
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sort = query.sort or parse_sort(kind, None)
    # "+" (SQLite) stops the planner from walking the whole date index to avoid a sort
    # when the keyword lookup has already narrowed the rows down to a few.
    plus = "+" if by_index and dialect == "sqlite" else ""
    order = " ORDER BY " + ", ".join(
        f"{plus}v.{name} {'DESC' if desc else 'ASC'}" for name, desc in sort
    )
    select = f"SELECT {', '.join('v.' + n for n in names)} FROM {kind.view.name} AS v"
    if query.limit is None:
        sql = select + where + order
    else:
        ids = f"SELECT v.{kind.id_column} FROM {kind.view.name} AS v{where}{order}"
        ids += f" LIMIT {int(query.limit)}"
        sql = f"{select} WHERE v.{kind.id_column} IN ({ids}){order.replace('+v.', 'v.')}"
    text = sa.text(sql).bindparams(*params)
    return text.columns(*(sa.column(n, kind.view.column(n).type) for n in names))


# Below this many matching sightings, --keyword looks them up by their keywords value;
# above it, the keyword is common enough that walking the newest rows finds the page.
KEYWORD_LOOKUP_MAX_SIGHTINGS = 10_000
# Distinct sightings.keywords values enumerated (one index seek each) before giving up.
KEYWORD_LOOKUP_MAX_DISTINCT = 5_000

_DISTINCT_KEYWORDS = sa.text(
    "WITH RECURSIVE d(k) AS ("
    " SELECT min(CAST(keywords AS TEXT)) FROM sightings"
    " UNION ALL"
    " SELECT (SELECT min(CAST(s.keywords AS TEXT)) FROM sightings s"
    "         WHERE CAST(s.keywords AS TEXT) > d.k) FROM d WHERE d.k IS NOT NULL)"
    " SELECT k FROM d WHERE k IS NOT NULL LIMIT :most"
)


def plan_keywords(conn: Connection, query: Query) -> list[str] | None:
    """The ``sightings.keywords`` values matching ``--keyword``, if a lookup pays.

    The distinct values are few (a crawl's keyword combinations), and walking them
    through ``ix_sightings_keywords_text`` costs one index seek each; None means: use
    the row-by-row check (no keyword filter, too many distinct values, or a common
    keyword).
    """
    wanted = {k.lower() for k in query.filters.keyword}
    if not wanted or query.kind.name not in ("stylizations", "images"):
        return None
    most = KEYWORD_LOOKUP_MAX_DISTINCT
    values = conn.execute(_DISTINCT_KEYWORDS, {"most": most + 1}).scalars().all()
    if len(values) > most:
        return None
    matching = []
    for text in values:
        try:
            keywords = json.loads(text)
        except ValueError:
            return None  # not JSON: leave it to the row-by-row check
        if isinstance(keywords, list) and wanted & {str(k).lower() for k in keywords}:
            matching.append(text)
    if not matching:
        return matching
    count = conn.execute(
        sa.text(
            "SELECT count(*) FROM (SELECT 1 FROM sightings "
            "WHERE CAST(keywords AS TEXT) IN :texts LIMIT :most) AS x"
        ).bindparams(sa.bindparam("texts", matching, expanding=True)),
        {"most": KEYWORD_LOOKUP_MAX_SIGHTINGS},
    ).scalar_one()
    return matching if count < KEYWORD_LOOKUP_MAX_SIGHTINGS else None


def prepare(conn: Connection, query: Query, *, keyword_lookup: bool | None = None) -> Any:
    """The statement for ``query`` on ``conn``, with the cheaper keyword plan.

    ``keyword_lookup`` forces a plan (tests compare both); None picks one.
    """
    texts = plan_keywords(conn, query) if keyword_lookup is not False else None
    if keyword_lookup and texts is None and query.filters.keyword:
        texts = _all_matching(conn, query)
    return build_select(query, conn.dialect.name, keyword_texts=texts)


def _all_matching(conn: Connection, query: Query) -> list[str]:
    wanted = {k.lower() for k in query.filters.keyword}
    values = conn.execute(_DISTINCT_KEYWORDS, {"most": 10**9}).scalars().all()
    return [t for t in values if wanted & {str(k).lower() for k in json.loads(t)}]


def iter_rows(
    conn: Connection, query: Query, *, batch_size: int = 10_000
) -> Iterator[list[sa.Row[Any]]]:
    """Rows of ``query`` in batches, streamed (a server-side cursor on PostgreSQL)."""
    stmt = prepare(conn, query)
    result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(stmt)
    for batch in result.partitions(batch_size):
        yield list(batch)


def list_rows(
    engine: Engine, query: Query, *, keyword_lookup: bool | None = None
) -> list[dict[str, Any]]:
    """The rows of a listing as dicts (for printing; use iter_rows for big exports)."""
    with engine.connect() as conn:
        stmt = prepare(conn, query, keyword_lookup=keyword_lookup)
        rows = conn.execute(stmt).mappings().all()
    return [dict(r) for r in rows]


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
