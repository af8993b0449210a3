"""The analyst queries behind ``dreamcrawl catalog list|show|export|gallery``.

Every listing reads one of the documented views (storage/views.py), so what the CLI
prints, what an export holds and what an analyst gets from SQL are the same columns.
This module is the entry point: build a :class:`Query` (its parts and their validation
live in storage.filters and are re-exported here), then run it with :func:`list_rows`
or stream it with :func:`iter_rows`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from storage.filters import (
    KINDS,
    Filters,
    Kind,
    Query,
    as_utc,
    check_filters,
    get_kind,
    jsonable,
    parse_columns,
    parse_sort,
    parse_when,
)

__all__ = [
    "KINDS",
    "Filters",
    "Kind",
    "Query",
    "as_utc",
    "build_select",
    "check_filters",
    "get_kind",
    "iter_rows",
    "jsonable",
    "list_rows",
    "parse_columns",
    "parse_sort",
    "parse_when",
    "plan_keywords",
    "prepare",
]

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
    # Layer names are checked to be plain [a-z0-9] words, so LIKE needs no escaping.
    return f"(',' || {view_layers} || ',') LIKE :{{p}}"


def _image_kind(kind: Kind) -> bool:
    return kind.name in ("stylizations", "images")


def _keyword_sql(kind: Kind, dialect: str) -> str:
    if _image_kind(kind):
        return _keyword_exists(dialect, "sightings", "s.image_id = v.image_id")
    return _keyword_exists(dialect, "crawl_runs", "r.id = v.crawl_run_id")


def _plus(dialect: str) -> str:
    # In a correlated EXISTS, "+col" (SQLite) keeps the planner on the image_id index
    # instead of scanning a column's own index once per outer row.
    return "+" if dialect == "sqlite" else ""


def _source_sql(kind: Kind, dialect: str) -> str:
    if _image_kind(kind):
        return (
            "EXISTS (SELECT 1 FROM sightings s "
            f"WHERE s.image_id = v.image_id AND {_plus(dialect)}s.source IN :{{p}})"
        )
    return _run_sources_exists(dialect)


def _preset_sql(kind: Kind, dialect: str) -> str:
    if kind.name == "stylizations":
        return "v.preset IN :{p}"
    return (
        "EXISTS (SELECT 1 FROM stylizations st "
        f"WHERE st.image_id = v.image_id AND {_plus(dialect)}st.preset IN :{{p}})"
    )


def _layer_sql(kind: Kind, dialect: str) -> str:
    if kind.name == "stylizations":
        return _layer_clause("v.layers")
    return (
        "EXISTS (SELECT 1 FROM v_stylized vs WHERE vs.image_id = v.image_id AND "
        f"{_layer_clause('vs.layers')})"
    )


def _run_sql(kind: Kind, dialect: str) -> str:
    if _image_kind(kind):
        # Driven from the run's sightings: a run is small next to the catalog.
        return "v.image_id IN (SELECT s.image_id FROM sightings s WHERE s.crawl_run_id IN :{p})"
    return "v.crawl_run_id IN :{p}"


# One SQL template per filter (``{p}`` is its bound parameter), by filter name.
FILTER_SQL: dict[str, Callable[[Kind, str], str]] = {
    "keyword": _keyword_sql,
    "source": _source_sql,
    "preset": _preset_sql,
    "layer": _layer_sql,
    "status": lambda kind, dialect: "v.status IN :{p}",
    "reason": lambda kind, dialect: "v.reason IN :{p}",
    "run": _run_sql,
    "image": lambda kind, dialect: "v.image_id IN :{p}",
    "since": lambda kind, dialect: f"v.{kind.date_column} >= :{{p}}",
    "until": lambda kind, dialect: f"v.{kind.date_column} < :{{p}}",
}


def _filter_sql(kind: Kind, name: str, dialect: str) -> str:
    """SQL template for one filter on ``kind``; ``{p}`` is its bound parameter."""
    return FILTER_SQL[name](kind, dialect)


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
