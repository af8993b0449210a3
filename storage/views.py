"""The analyst views' columns, as Python knows them.

The views themselves are created by the migrations ``0002_analyst_views``,
``0003_image_labels`` and ``0004_lease_holders`` (one SQL text per dialect, because
SQLite and PostgreSQL spell JSON differently). This module is what the query commands
rely on: which columns each view has, their types (so SQLite's text
timestamps come back as datetimes), and a one-line meaning of each, which
``docs/catalog.md`` expands on. A test checks that the database's views and this module
agree, on both dialects.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, DateTime, Float, String
from sqlalchemy.types import TypeEngine

INT = BigInteger()
FLOAT = Float()
TEXT = String()
TIME = DateTime(timezone=True)
BOOL = Boolean()


@dataclass(frozen=True)
class Column:
    name: str
    type: TypeEngine
    doc: str


@dataclass(frozen=True)
class View:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _cols(*specs: tuple[str, TypeEngine, str]) -> tuple[Column, ...]:
    return tuple(Column(name, type_, doc) for name, type_, doc in specs)


V_STYLIZED = View(
    "v_stylized",
    "one row per stylization (every status) with its source, parameters and timings",
    _cols(
        ("stylization_id", INT, "stylizations.id"),
        ("image_id", INT, "the dreamed image (images.id)"),
        ("image_sha256", TEXT, "sha256 of the original image"),
        ("status", TEXT, "pending, running, done, failed or broken"),
        ("preset", TEXT, "preset name, NULL for hand-made parameters"),
        ("layers", TEXT, "layer names, comma-separated, in network order"),
        ("channel", TEXT, "the single channel maximized, if any (e.g. mixed4:97)"),
        ("octaves", INT, "number of octaves (scales)"),
        ("octave_scale", FLOAT, "ratio between two octaves"),
        ("steps", INT, "gradient-ascent steps per octave"),
        ("step_size", FLOAT, "step size"),
        ("tile", INT, "tile size in pixels, NULL when untiled"),
        ("seed", INT, "random seed"),
        ("params_hash", TEXT, "sha256 of the canonical parameter JSON"),
        ("params_json", TEXT, "the canonical parameter JSON itself"),
        ("weights_id", TEXT, "which weights file (name)"),
        ("weights_sha256", TEXT, "sha256 of the weights file"),
        ("code_version", TEXT, "dreamcrawl version that made it"),
        ("device", TEXT, "CPU or GPU it ran on"),
        ("total_seconds", FLOAT, "sum of the per-octave timings"),
        ("duration_seconds", FLOAT, "finished_at - started_at, seconds"),
        ("octave_timings", TEXT, "per-octave timings, JSON text"),
        ("objective_values", TEXT, "objective values, JSON text"),
        ("created_at", TIME, "when the row was created (UTC)"),
        ("started_at", TIME, "when the dream started (UTC)"),
        ("finished_at", TIME, "when it finished (UTC)"),
        ("output_sha256", TEXT, "sha256 of the output image"),
        ("output_path", TEXT, "output blob, relative to DREAMCRAWL_HOME"),
        ("image_path", TEXT, "original image blob, relative to DREAMCRAWL_HOME"),
        ("source_url", TEXT, "URL of the image's first sighting"),
        ("page_url", TEXT, "page of the first sighting"),
        ("source", TEXT, "source of the first sighting (site, search source, local)"),
        ("keywords", TEXT, "every keyword the image was found under, comma-separated"),
        ("licence", TEXT, "licence given by the first sighting's source"),
        ("attribution", TEXT, "attribution given by the first sighting's source"),
        ("error", TEXT, "error message of a failed dream"),
        ("prefect_flow_run_id", TEXT, "Prefect flow run that made it"),
        ("held_by", TEXT, "while running: the worker holding it (host:pid)"),
        ("held_until", TIME, "while running: when its lease runs out (UTC)"),
    ),
)

V_IMAGES = View(
    "v_images",
    "one row per image with its first sighting, keywords and stylization counts",
    _cols(
        ("image_id", INT, "images.id"),
        ("sha256", TEXT, "sha256 of the original bytes"),
        ("width", INT, "pixels"),
        ("height", INT, "pixels"),
        ("format", TEXT, "JPEG, PNG, …"),
        ("bytes", INT, "file size"),
        ("status", TEXT, "ok or broken"),
        ("phash", TEXT, "perceptual hash"),
        ("near_duplicate_of_id", INT, "the image this one nearly duplicates"),
        ("created_at", TIME, "when the image entered the catalog (UTC)"),
        ("image_path", TEXT, "blob, relative to DREAMCRAWL_HOME"),
        ("first_seen_at", TIME, "fetch time of the first sighting (UTC)"),
        ("first_url", TEXT, "URL of the first sighting"),
        ("first_page_url", TEXT, "page of the first sighting"),
        ("first_source", TEXT, "source of the first sighting"),
        ("first_crawl_run_id", INT, "crawl run of the first sighting"),
        ("licence", TEXT, "licence of the first sighting"),
        ("attribution", TEXT, "attribution of the first sighting"),
        ("keywords", TEXT, "every keyword it was found under, comma-separated"),
        ("sightings", INT, "how many times it was seen"),
        ("stylizations", INT, "stylization rows, any status"),
        ("stylizations_done", INT, "finished stylizations"),
    ),
)

V_CRAWL_RUNS = View(
    "v_crawl_runs",
    "one row per crawl or import run with what it found and rejected",
    _cols(
        ("crawl_run_id", INT, "crawl_runs.id"),
        ("kind", TEXT, "crawl or import"),
        ("status", TEXT, "running, finished, failed or interrupted"),
        ("keywords", TEXT, "keywords asked for, comma-separated"),
        ("sources", TEXT, "sources asked for, comma-separated"),
        ("started_at", TIME, "UTC"),
        ("finished_at", TIME, "UTC"),
        ("duration_seconds", FLOAT, "finished_at - started_at, seconds"),
        ("sightings", INT, "sightings recorded"),
        ("images", INT, "distinct images seen"),
        ("duplicate_sightings", INT, "sightings of an image already in the catalog"),
        ("rejections", INT, "URLs rejected"),
        ("error", TEXT, "why a failed run failed"),
        ("prefect_flow_run_id", TEXT, "Prefect flow run that ran it"),
    ),
)

V_REJECTIONS = View(
    "v_rejections",
    "one row per rejected URL with its crawl run's keywords",
    _cols(
        ("rejection_id", INT, "rejections.id"),
        ("crawl_run_id", INT, "the run that rejected it"),
        ("url", TEXT, "the URL rejected"),
        ("page_url", TEXT, "the page it was found on"),
        ("reason", TEXT, "why (machine-readable reason)"),
        ("detail", TEXT, "details for humans"),
        ("created_at", TIME, "UTC"),
        ("run_keywords", TEXT, "the run's keywords, comma-separated"),
    ),
)

V_REJECTIONS_BY_REASON = View(
    "v_rejections_by_reason",
    "rejection counts per crawl run and reason",
    _cols(
        ("crawl_run_id", INT, "the run"),
        ("run_keywords", TEXT, "the run's keywords, comma-separated"),
        ("run_started_at", TIME, "UTC"),
        ("reason", TEXT, "rejection reason"),
        ("rejections", INT, "how many URLs were rejected for it"),
        ("example_url", TEXT, "one of those URLs (the smallest)"),
    ),
)

V_KEYWORD_YIELD = View(
    "v_keyword_yield",
    "per keyword: runs, sightings, accepted and stylized images, run rejections",
    _cols(
        ("keyword", TEXT, "the keyword"),
        ("crawl_runs", INT, "runs that asked for it"),
        ("sightings", INT, "sightings that matched it"),
        ("images", INT, "distinct images accepted under it"),
        ("duplicate_sightings", INT, "its sightings of already-known images"),
        ("stylized_images", INT, "of those images, how many have a finished stylization"),
        ("run_rejections", INT, "rejections in the runs that asked for it"),
    ),
)

V_PRESET_TIMINGS = View(
    "v_preset_timings",
    "per preset (finished stylizations): count and time taken",
    _cols(
        ("preset", TEXT, "preset name (NULL: hand-made parameters)"),
        ("stylizations", INT, "finished stylizations"),
        ("images", INT, "distinct images"),
        ("avg_seconds", FLOAT, "mean of total_seconds"),
        ("max_seconds", FLOAT, "largest total_seconds"),
        ("total_seconds", FLOAT, "sum of total_seconds"),
        ("failed", INT, "failed stylizations of this preset"),
    ),
)

V_LABELS = View(
    "v_labels",
    "one row per image label: an image's top ImageNet classes with its source (migration 0003)",
    _cols(
        ("label_id", INT, "labels.id"),
        ("image_id", INT, "the labelled image (images.id)"),
        ("image_sha256", TEXT, "sha256 of the image"),
        ("labeller", TEXT, "which classifier (name and sha256 prefix)"),
        ("rank", INT, "1 = most probable"),
        ("wnid", TEXT, "WordNet id of the ImageNet class, e.g. n02123045"),
        ("name", TEXT, "readable class name, e.g. tabby"),
        ("score", FLOAT, "probability, 0..1"),
        ("labelled_at", TIME, "when the image was labelled (UTC)"),
        ("image_path", TEXT, "blob, relative to DREAMCRAWL_HOME"),
        ("first_url", TEXT, "URL of the image's first sighting"),
        ("first_source", TEXT, "source of the first sighting"),
        ("keywords", TEXT, "every keyword the image was found under, comma-separated"),
    ),
)

VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        V_STYLIZED,
        V_IMAGES,
        V_CRAWL_RUNS,
        V_REJECTIONS,
        V_REJECTIONS_BY_REASON,
        V_KEYWORD_YIELD,
        V_PRESET_TIMINGS,
        V_LABELS,
    )
}
