"""One image's whole lineage, for ``dreamcrawl catalog show``.

Where it was seen (sightings and their crawl runs), what those URLs' crawls rejected, and
every stylization with its parameters, weights and timings. An image is named by its id
or by a prefix of its sha256, the way git names commits.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.db import Catalog
from storage.errors import UserError
from storage.labels import labelling_of, labels_of
from storage.models import CrawlRun, Image, Rejection, Sighting
from storage.queries import KINDS, Filters, Query, build_select, jsonable

MIN_PREFIX = 4
HEX = re.compile(r"^[0-9a-f]+$")


def find_image_id(session: Session, ref: str) -> int:
    """The id of the image ``ref`` names: an id, or a unique sha256 prefix."""
    text = ref.strip().lower()
    if text.isdigit() and session.get(Image, int(text)) is not None:
        return int(text)
    if len(text) < MIN_PREFIX or not HEX.match(text):
        raise UserError(
            f"no image {ref!r}: give an image id or at least {MIN_PREFIX} hex digits of its sha256"
        )
    # A range on the unique sha256 index; "g" sorts after every hex digit.
    ids = session.scalars(
        sa.select(Image.id)
        .where(Image.sha256 >= text, Image.sha256 < text + "g")
        .order_by(Image.id)
        .limit(2)
    ).all()
    if not ids:
        raise UserError(f"no image with id or sha256 prefix {ref!r}")
    if len(ids) > 1:
        raise UserError(f"sha256 prefix {ref!r} matches more than one image: give more digits")
    return int(ids[0])


def _row(obj: Any, names: list[str]) -> dict[str, Any]:
    return {n: jsonable(getattr(obj, n)) for n in names}


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def lineage(catalog: Catalog, ref: str) -> dict[str, Any]:
    """Everything the catalog knows about one image, as plain JSON-able data."""
    with catalog.session() as session:
        image_id = find_image_id(session, ref)
        conn = session.connection()
        dialect = conn.dialect.name
        only = Filters(image=(image_id,))
        image = conn.execute(build_select(Query(KINDS["images"], only), dialect)).mappings().one()
        sightings = session.scalars(
            sa.select(Sighting)
            .where(Sighting.image_id == image_id)
            .order_by(Sighting.fetched_at, Sighting.id)
        ).all()
        run_ids = sorted({s.crawl_run_id for s in sightings if s.crawl_run_id is not None})
        runs = session.scalars(
            sa.select(CrawlRun).where(CrawlRun.id.in_(run_ids)).order_by(CrawlRun.id)
        ).all()
        urls = sorted({s.url for s in sightings})
        rejections = session.scalars(
            sa.select(Rejection)
            .where(Rejection.url.in_(urls))
            .order_by(Rejection.created_at, Rejection.id)
        ).all()
        labels = labels_of(session, image_id)
        labellings = labelling_of(session, image_id)
        stylizations = (
            conn.execute(
                build_select(
                    Query(
                        KINDS["stylizations"],
                        only,
                        sort=(("created_at", False), ("stylization_id", False)),
                    ),
                    dialect,
                )
            )
            .mappings()
            .all()
        )
    return {
        "image": {k: jsonable(v) for k, v in image.items()},
        "sightings": [
            _row(
                s,
                [
                    "id",
                    "crawl_run_id",
                    "url",
                    "page_url",
                    "source",
                    "keywords",
                    "matches",
                    "relevance",
                    "duplicate",
                    "near_duplicate",
                    "licence",
                    "attribution",
                    "fetched_at",
                ],
            )
            | {"keywords": list(s.keywords or []), "matches": list(s.matches or [])}
            for s in sightings
        ],
        "crawl_runs": [
            _row(r, ["id", "kind", "status", "started_at", "finished_at"])
            | {"keywords": list(r.keywords or []), "sources": list(r.sources or [])}
            for r in runs
        ],
        "rejections": [
            _row(x, ["id", "crawl_run_id", "url", "page_url", "reason", "detail", "created_at"])
            for x in rejections
        ],
        "labels": labels,
        "labellings": [{k: jsonable(v) for k, v in row.items()} for row in labellings],
        "stylizations": [
            {k: jsonable(v) for k, v in st.items()}
            | {
                "params": _json_or_text(st["params_json"]),
                "octave_timings": _json_or_text(st["octave_timings"]),
                "objective_values": _json_or_text(st["objective_values"]),
            }
            for st in stylizations
        ],
    }
