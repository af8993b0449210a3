"""analyst views and the indexes the catalog queries need

The views are documented in docs/catalog.md and their columns listed in storage/views.py.
SQLite and PostgreSQL read JSON differently (``json_each``/``json_extract`` against
``json_array_elements``/``->>``), so each view has one text per dialect; both give the
same rows. Lists inside a value (layers, keywords) are sorted explicitly (PostgreSQL in
the "C" collation) so that both dialects agree to the byte.

Stylization parameters are read from ``params_json`` tolerantly: ``layers`` may be a
mapping of layer name to weight, a list of names, a list of ``[name, weight]`` pairs or
a list of ``{"name": …}`` objects; ``octaves`` a count or a list of octave indexes;
``channel`` a channel index of the (single) layer, as the engine writes it, a string
``"mixed4:97"``, a pair or ``{"layer": …, "index": …}``; octave
timings a list of seconds or of objects with ``seconds``.

Why one long file: a migration is frozen once released, so it carries the full SQL of
every view in both dialects as it was at this revision instead of importing it from
code that will change.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (index name, table, columns): what `catalog list` filters and sorts on most.
INDEXES = (
    ("ix_stylizations_preset_created_at", "stylizations", ["preset", "created_at"]),
    ("ix_stylizations_status_created_at", "stylizations", ["status", "created_at"]),
    ("ix_images_status_created_at", "images", ["status", "created_at"]),
    ("ix_rejections_url", "rejections", ["url"]),
    ("ix_rejections_crawl_run_id_reason", "rejections", ["crawl_run_id", "reason"]),
    ("ix_crawl_runs_started_at", "crawl_runs", ["started_at"]),
    # A run's sighting, distinct-image and duplicate counts without reading the table.
    (
        "ix_sightings_crawl_run_id_duplicate_image_id",
        "sightings",
        ["crawl_run_id", "duplicate", "image_id"],
    ),
)

# Views in creation order (later ones read earlier ones); dropped in reverse.
VIEW_NAMES = (
    "v_stylized",
    "v_images",
    "v_crawl_runs",
    "v_rejections",
    "v_rejections_by_reason",
    "v_keyword_yield",
    "v_preset_timings",
)


def _path(key: str) -> str:
    return f"'objects/' || substr({key}, 1, 2) || '/' || substr({key}, 3)"


# --------------------------------------------------------------------------- SQLite


def _sqlite_int(path: str) -> str:
    p = "st.params_json"
    return (
        f"CASE json_type({p}, '{path}') "
        f"WHEN 'integer' THEN json_extract({p}, '{path}') "
        f"WHEN 'real' THEN CAST(json_extract({p}, '{path}') AS INTEGER) "
        f"WHEN 'array' THEN json_array_length({p}, '{path}') END"
    )


def _sqlite_float(path: str) -> str:
    p = "st.params_json"
    return (
        f"CASE WHEN json_type({p}, '{path}') IN ('integer', 'real') "
        f"THEN CAST(json_extract({p}, '{path}') AS REAL) END"
    )


def _sqlite_keywords(image_id: str) -> str:
    return (
        "(SELECT group_concat(k, ',') FROM (SELECT DISTINCT kw.value AS k "
        "FROM sightings s, json_each(s.keywords) AS kw "
        f"WHERE s.image_id = {image_id} ORDER BY k))"
    )


def _sqlite_list(json_col: str) -> str:
    return f"(SELECT group_concat(e.value, ',') FROM json_each({json_col}) AS e)"


def _first_sighting(image_id: str) -> str:
    return (
        "LEFT JOIN sightings fs ON fs.id = (SELECT s.id FROM sightings s "
        f"WHERE s.image_id = {image_id} ORDER BY s.fetched_at, s.id LIMIT 1)"
    )


SQLITE_V_STYLIZED = f"""
CREATE VIEW v_stylized AS
SELECT
  st.id AS stylization_id,
  st.image_id AS image_id,
  i.sha256 AS image_sha256,
  st.status AS status,
  st.preset AS preset,
  (SELECT group_concat(name, ',') FROM (
     SELECT CASE
       WHEN json_type(st.params_json, '$.layers') = 'object' THEN l.key
       WHEN l.type = 'text' THEN l.value
       WHEN l.type = 'array' THEN json_extract(l.value, '$[0]')
       WHEN l.type = 'object' THEN json_extract(l.value, '$.name')
     END AS name
     FROM json_each(st.params_json, '$.layers') AS l
     ORDER BY length(name), name)) AS layers,
  CASE json_type(st.params_json, '$.channel')
    WHEN 'integer' THEN (CASE json_type(st.params_json, '$.layers')
        WHEN 'object' THEN (SELECT l.key FROM json_each(st.params_json, '$.layers') AS l LIMIT 1)
        WHEN 'text' THEN json_extract(st.params_json, '$.layers')
        ELSE coalesce(json_extract(st.params_json, '$.layers[0][0]'),
                      json_extract(st.params_json, '$.layers[0].name'),
                      json_extract(st.params_json, '$.layers[0]')) END)
      || ':' || json_extract(st.params_json, '$.channel')
    WHEN 'text' THEN json_extract(st.params_json, '$.channel')
    WHEN 'array' THEN json_extract(st.params_json, '$.channel[0]') || ':'
                      || json_extract(st.params_json, '$.channel[1]')
    WHEN 'object' THEN coalesce(json_extract(st.params_json, '$.channel.layer'), '') || ':'
                      || coalesce(json_extract(st.params_json, '$.channel.index'),
                                  json_extract(st.params_json, '$.channel.channel'), '')
  END AS channel,
  {_sqlite_int("$.octaves")} AS octaves,
  {_sqlite_float("$.octave_scale")} AS octave_scale,
  {_sqlite_int("$.steps")} AS steps,
  {_sqlite_float("$.step_size")} AS step_size,
  {_sqlite_int("$.tile")} AS tile,
  st.seed AS seed,
  st.params_hash AS params_hash,
  st.params_json AS params_json,
  st.weights_id AS weights_id,
  st.weights_sha256 AS weights_sha256,
  st.code_version AS code_version,
  st.device AS device,
  (SELECT CAST(sum(CASE
       WHEN t.type IN ('integer', 'real') THEN t.value
       WHEN t.type = 'object' THEN json_extract(t.value, '$.seconds')
     END) AS REAL)
   FROM json_each(CASE WHEN json_type(st.octave_timings) = 'array'
                  THEN st.octave_timings ELSE '[]' END) AS t) AS total_seconds,
  round((julianday(st.finished_at) - julianday(st.started_at)) * 86400.0, 3)
    AS duration_seconds,
  st.octave_timings AS octave_timings,
  st.objective_values AS objective_values,
  st.created_at AS created_at,
  st.started_at AS started_at,
  st.finished_at AS finished_at,
  st.output_sha256 AS output_sha256,
  {_path("st.output_blob_key")} AS output_path,
  {_path("i.blob_key")} AS image_path,
  fs.url AS source_url,
  fs.page_url AS page_url,
  fs.source AS source,
  {_sqlite_keywords("st.image_id")} AS keywords,
  fs.licence AS licence,
  fs.attribution AS attribution,
  st.error AS error,
  st.prefect_flow_run_id AS prefect_flow_run_id
FROM stylizations st
JOIN images i ON i.id = st.image_id
{_first_sighting("st.image_id")}
"""

SQLITE_V_IMAGES = f"""
CREATE VIEW v_images AS
SELECT
  i.id AS image_id,
  i.sha256 AS sha256,
  i.width AS width,
  i.height AS height,
  i.format AS format,
  i.bytes AS bytes,
  i.status AS status,
  i.phash AS phash,
  i.near_duplicate_of_id AS near_duplicate_of_id,
  i.created_at AS created_at,
  {_path("i.blob_key")} AS image_path,
  fs.fetched_at AS first_seen_at,
  fs.url AS first_url,
  fs.page_url AS first_page_url,
  fs.source AS first_source,
  fs.crawl_run_id AS first_crawl_run_id,
  fs.licence AS licence,
  fs.attribution AS attribution,
  {_sqlite_keywords("i.id")} AS keywords,
  (SELECT count(*) FROM sightings s WHERE s.image_id = i.id) AS sightings,
  (SELECT count(*) FROM stylizations st WHERE st.image_id = i.id) AS stylizations,
  -- status is tested outside the WHERE so that no planner prefers the status index.
  (SELECT coalesce(sum(CASE WHEN st.status = 'done' THEN 1 ELSE 0 END), 0)
   FROM stylizations st WHERE st.image_id = i.id) AS stylizations_done
FROM images i
{_first_sighting("i.id")}
"""

SQLITE_V_CRAWL_RUNS = f"""
CREATE VIEW v_crawl_runs AS
SELECT
  r.id AS crawl_run_id,
  r.kind AS kind,
  r.status AS status,
  {_sqlite_list("r.keywords")} AS keywords,
  {_sqlite_list("r.sources")} AS sources,
  r.started_at AS started_at,
  r.finished_at AS finished_at,
  round((julianday(r.finished_at) - julianday(r.started_at)) * 86400.0, 3)
    AS duration_seconds,
  (SELECT count(*) FROM sightings s WHERE s.crawl_run_id = r.id) AS sightings,
  (SELECT count(DISTINCT s.image_id) FROM sightings s WHERE s.crawl_run_id = r.id) AS images,
  (SELECT count(*) FROM sightings s WHERE s.crawl_run_id = r.id AND s.duplicate)
    AS duplicate_sightings,
  (SELECT count(*) FROM rejections x WHERE x.crawl_run_id = r.id) AS rejections,
  r.error AS error,
  r.prefect_flow_run_id AS prefect_flow_run_id
FROM crawl_runs r
"""

SQLITE_V_REJECTIONS = f"""
CREATE VIEW v_rejections AS
SELECT
  x.id AS rejection_id,
  x.crawl_run_id AS crawl_run_id,
  x.url AS url,
  x.page_url AS page_url,
  x.reason AS reason,
  x.detail AS detail,
  x.created_at AS created_at,
  {_sqlite_list("r.keywords")} AS run_keywords
FROM rejections x
LEFT JOIN crawl_runs r ON r.id = x.crawl_run_id
"""

SQLITE_V_REJECTIONS_BY_REASON = f"""
CREATE VIEW v_rejections_by_reason AS
SELECT
  g.crawl_run_id AS crawl_run_id,
  {_sqlite_list("r.keywords")} AS run_keywords,
  r.started_at AS run_started_at,
  g.reason AS reason,
  g.rejections AS rejections,
  g.example_url AS example_url
FROM (SELECT crawl_run_id, reason, count(*) AS rejections, min(url) AS example_url
      FROM rejections GROUP BY crawl_run_id, reason) AS g
LEFT JOIN crawl_runs r ON r.id = g.crawl_run_id
"""

_KEYWORD_YIELD_TAIL = """
 per_kw AS (
  SELECT keyword, count(*) AS sightings, count(DISTINCT image_id) AS images,
         sum(CASE WHEN duplicate THEN 1 ELSE 0 END) AS duplicate_sightings
  FROM sk GROUP BY keyword),
 stylized AS (
  SELECT sk.keyword, count(DISTINCT sk.image_id) AS stylized_images FROM sk
  WHERE (SELECT max(CASE WHEN st.status = 'done' THEN 1 ELSE 0 END) FROM stylizations st
         WHERE st.image_id = sk.image_id) = 1
  GROUP BY sk.keyword),
 runs AS (SELECT keyword, count(DISTINCT crawl_run_id) AS crawl_runs FROM rk GROUP BY keyword),
 rej AS (
  SELECT rk.keyword, count(*) AS run_rejections
  FROM rk JOIN rejections x ON x.crawl_run_id = rk.crawl_run_id GROUP BY rk.keyword),
 kw AS (SELECT keyword FROM per_kw UNION SELECT keyword FROM runs)
SELECT
  kw.keyword AS keyword,
  coalesce(runs.crawl_runs, 0) AS crawl_runs,
  coalesce(per_kw.sightings, 0) AS sightings,
  coalesce(per_kw.images, 0) AS images,
  coalesce(per_kw.duplicate_sightings, 0) AS duplicate_sightings,
  coalesce(stylized.stylized_images, 0) AS stylized_images,
  coalesce(rej.run_rejections, 0) AS run_rejections
FROM kw
LEFT JOIN per_kw ON per_kw.keyword = kw.keyword
LEFT JOIN stylized ON stylized.keyword = kw.keyword
LEFT JOIN runs ON runs.keyword = kw.keyword
LEFT JOIN rej ON rej.keyword = kw.keyword
"""

SQLITE_V_KEYWORD_YIELD = (
    """
CREATE VIEW v_keyword_yield AS
WITH
 sk AS (SELECT kw.value AS keyword, s.image_id AS image_id, s.duplicate AS duplicate
        FROM sightings s, json_each(s.keywords) AS kw),
 rk AS (SELECT kw.value AS keyword, r.id AS crawl_run_id
        FROM crawl_runs r, json_each(r.keywords) AS kw),
"""
    + _KEYWORD_YIELD_TAIL
)

V_PRESET_TIMINGS = """
CREATE VIEW v_preset_timings AS
SELECT
  v.preset AS preset,
  sum(CASE WHEN v.status = 'done' THEN 1 ELSE 0 END) AS stylizations,
  count(DISTINCT CASE WHEN v.status = 'done' THEN v.image_id END) AS images,
  avg(CASE WHEN v.status = 'done' THEN v.total_seconds END) AS avg_seconds,
  max(CASE WHEN v.status = 'done' THEN v.total_seconds END) AS max_seconds,
  sum(CASE WHEN v.status = 'done' THEN v.total_seconds END) AS total_seconds,
  sum(CASE WHEN v.status = 'failed' THEN 1 ELSE 0 END) AS failed
FROM v_stylized v
GROUP BY v.preset
"""

SQLITE_VIEWS = (
    SQLITE_V_STYLIZED,
    SQLITE_V_IMAGES,
    SQLITE_V_CRAWL_RUNS,
    SQLITE_V_REJECTIONS,
    SQLITE_V_REJECTIONS_BY_REASON,
    SQLITE_V_KEYWORD_YIELD,
    V_PRESET_TIMINGS,
)

# ----------------------------------------------------------------------- PostgreSQL


def _pg_int(key: str) -> str:
    return (
        f"CASE json_typeof(p.pj -> '{key}') "
        f"WHEN 'number' THEN trunc((p.pj ->> '{key}')::numeric)::bigint "
        f"WHEN 'array' THEN json_array_length(p.pj -> '{key}')::bigint END"
    )


def _pg_float(key: str) -> str:
    return f"CASE json_typeof(p.pj -> '{key}') WHEN 'number' THEN (p.pj ->> '{key}')::float8 END"


def _pg_keywords(image_id: str) -> str:
    return (
        '(SELECT string_agg(DISTINCT kw.value COLLATE "C", \',\' ORDER BY kw.value COLLATE "C") '
        "FROM sightings s CROSS JOIN LATERAL json_array_elements_text(s.keywords) AS kw(value) "
        f"WHERE s.image_id = {image_id})"
    )


def _pg_list(json_col: str) -> str:
    return (
        "(SELECT string_agg(e.value, ',' ORDER BY e.n) "
        f"FROM json_array_elements_text({json_col}) WITH ORDINALITY AS e(value, n))"
    )


def _pg_seconds(later: str, earlier: str) -> str:
    return f"round(EXTRACT(EPOCH FROM ({later} - {earlier}))::numeric, 3)::float8"


PG_V_STYLIZED = f"""
CREATE VIEW v_stylized AS
SELECT
  st.id AS stylization_id,
  st.image_id AS image_id,
  i.sha256 AS image_sha256,
  st.status AS status,
  st.preset AS preset,
  (SELECT string_agg(name, ',' ORDER BY length(name), name COLLATE "C") FROM (
     SELECT CASE
       WHEN json_typeof(p.pj -> 'layers') = 'object' THEN l.key
       WHEN json_typeof(l.value) = 'string' THEN l.value #>> '{{}}'
       WHEN json_typeof(l.value) = 'array' THEN l.value ->> 0
       WHEN json_typeof(l.value) = 'object' THEN l.value ->> 'name'
     END AS name
     FROM (SELECT e.key, e.value FROM json_each(CASE json_typeof(p.pj -> 'layers')
             WHEN 'object' THEN p.pj -> 'layers' END) AS e
           UNION ALL
           SELECT NULL, e.value FROM json_array_elements(CASE json_typeof(p.pj -> 'layers')
             WHEN 'array' THEN p.pj -> 'layers' END) AS e
           UNION ALL
           SELECT NULL, p.pj -> 'layers' WHERE json_typeof(p.pj -> 'layers') = 'string'
          ) AS l) AS n) AS layers,
  CASE json_typeof(p.pj -> 'channel')
    WHEN 'number' THEN (CASE json_typeof(p.pj -> 'layers')
        WHEN 'object' THEN (SELECT k FROM json_object_keys(p.pj -> 'layers') AS k LIMIT 1)
        WHEN 'string' THEN p.pj ->> 'layers'
        ELSE coalesce(CASE json_typeof(p.pj -> 'layers' -> 0)
                        WHEN 'array' THEN p.pj -> 'layers' -> 0 ->> 0
                        WHEN 'object' THEN p.pj -> 'layers' -> 0 ->> 'name'
                        ELSE p.pj -> 'layers' ->> 0 END, '') END)
      || ':' || (p.pj ->> 'channel')
    WHEN 'string' THEN p.pj ->> 'channel'
    WHEN 'array' THEN (p.pj -> 'channel' ->> 0) || ':' || (p.pj -> 'channel' ->> 1)
    WHEN 'object' THEN coalesce(p.pj -> 'channel' ->> 'layer', '') || ':'
                      || coalesce(p.pj -> 'channel' ->> 'index',
                                  p.pj -> 'channel' ->> 'channel', '')
  END AS channel,
  {_pg_int("octaves")} AS octaves,
  {_pg_float("octave_scale")} AS octave_scale,
  {_pg_int("steps")} AS steps,
  {_pg_float("step_size")} AS step_size,
  {_pg_int("tile")} AS tile,
  st.seed AS seed,
  st.params_hash AS params_hash,
  st.params_json AS params_json,
  st.weights_id AS weights_id,
  st.weights_sha256 AS weights_sha256,
  st.code_version AS code_version,
  st.device AS device,
  (SELECT sum(CASE json_typeof(t)
       WHEN 'number' THEN (t #>> '{{}}')::float8
       WHEN 'object' THEN (t ->> 'seconds')::float8
     END)
   FROM json_array_elements(CASE WHEN json_typeof(st.octave_timings) = 'array'
                            THEN st.octave_timings ELSE '[]'::json END) AS t) AS total_seconds,
  {_pg_seconds("st.finished_at", "st.started_at")} AS duration_seconds,
  st.octave_timings::text AS octave_timings,
  st.objective_values::text AS objective_values,
  st.created_at AS created_at,
  st.started_at AS started_at,
  st.finished_at AS finished_at,
  st.output_sha256 AS output_sha256,
  {_path("st.output_blob_key")} AS output_path,
  {_path("i.blob_key")} AS image_path,
  fs.url AS source_url,
  fs.page_url AS page_url,
  fs.source AS source,
  {_pg_keywords("st.image_id")} AS keywords,
  fs.licence AS licence,
  fs.attribution AS attribution,
  st.error AS error,
  st.prefect_flow_run_id AS prefect_flow_run_id
FROM stylizations st
CROSS JOIN LATERAL (SELECT st.params_json::json AS pj) AS p
JOIN images i ON i.id = st.image_id
{_first_sighting("st.image_id")}
"""

PG_V_IMAGES = SQLITE_V_IMAGES.replace(_sqlite_keywords("i.id"), _pg_keywords("i.id"))

PG_V_CRAWL_RUNS = (
    SQLITE_V_CRAWL_RUNS.replace(_sqlite_list("r.keywords"), _pg_list("r.keywords"))
    .replace(_sqlite_list("r.sources"), _pg_list("r.sources"))
    .replace(
        "round((julianday(r.finished_at) - julianday(r.started_at)) * 86400.0, 3)",
        _pg_seconds("r.finished_at", "r.started_at"),
    )
)

PG_V_REJECTIONS = SQLITE_V_REJECTIONS.replace(_sqlite_list("r.keywords"), _pg_list("r.keywords"))

PG_V_REJECTIONS_BY_REASON = SQLITE_V_REJECTIONS_BY_REASON.replace(
    _sqlite_list("r.keywords"), _pg_list("r.keywords")
).replace("min(url)", 'min(url COLLATE "C")')

PG_V_KEYWORD_YIELD = (
    """
CREATE VIEW v_keyword_yield AS
WITH
 sk AS (SELECT kw.value AS keyword, s.image_id AS image_id, s.duplicate AS duplicate
        FROM sightings s CROSS JOIN LATERAL json_array_elements_text(s.keywords) AS kw(value)),
 rk AS (SELECT kw.value AS keyword, r.id AS crawl_run_id
        FROM crawl_runs r CROSS JOIN LATERAL json_array_elements_text(r.keywords) AS kw(value)),
"""
    + _KEYWORD_YIELD_TAIL
)

PG_VIEWS = (
    PG_V_STYLIZED,
    PG_V_IMAGES,
    PG_V_CRAWL_RUNS,
    PG_V_REJECTIONS,
    PG_V_REJECTIONS_BY_REASON,
    PG_V_KEYWORD_YIELD,
    V_PRESET_TIMINGS,
)


# The keyword lists of sightings, as text: a crawl has few distinct ones, so
# `catalog list --keyword` can enumerate them and look the matching ones up.
KEYWORDS_TEXT_INDEX = "ix_sightings_keywords_text"


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_index(KEYWORDS_TEXT_INDEX, "sightings", [sa.text("CAST(keywords AS TEXT)")])
    dialect = op.get_bind().dialect.name
    views = PG_VIEWS if dialect == "postgresql" else SQLITE_VIEWS
    for statement in views:
        op.execute(statement)


def downgrade() -> None:
    for name in reversed(VIEW_NAMES):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(KEYWORDS_TEXT_INDEX, table_name="sightings")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
