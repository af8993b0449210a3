"""``dreamcrawl catalog gallery``: a static HTML page of before/after pairs.

The page works offline and from any folder: thumbnails (made with Pillow) and full-size
copies live beside ``index.html`` under ``thumbs/`` and ``full/``, the CSS is inline, and
nothing is fetched from the network. Each pair shows its parameters, its source and the
licence and attribution the source gave. A blob that is missing or unreadable shows a
labelled placeholder instead of a broken image.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import ImageOps

from storage.blobs import BlobStore
from storage.db import Catalog
from storage.queries import Query, as_utc, list_rows

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #f4f1ec; color: #222; }
h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
.lead { margin: 0 0 1.5rem; color: #555; }
.grid { display: grid; gap: 1.25rem; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); }
.card { background: #fff; border-radius: 10px; padding: 1rem; box-shadow: 0 1px 4px #0002; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: .75rem; }
figure { margin: 0; text-align: center; }
figure img { max-width: 100%; height: auto; border-radius: 6px; background: #ddd; }
figcaption { font-size: .8rem; color: #666; margin-top: .25rem; }
.missing { display: flex; align-items: center; justify-content: center; height: 160px;
  background: #eee; border-radius: 6px; color: #a33; font-size: .9rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .75rem;
  font-size: .85rem; margin: .75rem 0 0; }
dt { color: #777; } dd { margin: 0; overflow-wrap: anywhere; }
.source { font-size: .85rem; margin-top: .6rem; border-top: 1px solid #eee; padding-top: .5rem; }
.empty { padding: 2rem; background: #fff; border-radius: 10px; }
"""

COLUMNS = (
    "stylization_id",
    "image_id",
    "image_sha256",
    "preset",
    "layers",
    "channel",
    "octaves",
    "octave_scale",
    "steps",
    "step_size",
    "tile",
    "seed",
    "weights_id",
    "device",
    "total_seconds",
    "finished_at",
    "output_sha256",
    "output_path",
    "image_path",
    "source_url",
    "page_url",
    "source",
    "keywords",
    "licence",
    "attribution",
)


@dataclass(frozen=True)
class Picture:
    """One image of a pair as the page refers to it (None: the blob could not be read)."""

    thumb: str | None
    full: str | None
    size: tuple[int, int] | None


def _picture(blobs: BlobStore, key: str, out_dir: Path, thumb_size: int) -> Picture:
    thumb_rel = f"thumbs/{key[:16]}-{thumb_size}.jpg"
    try:
        with blobs.open(key) as fh, PILImage.open(fh) as image:
            image.load()
            fmt = image.format or "PNG"
            size = image.size
            thumb = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError):
        return Picture(None, None, None)
    full_rel = f"full/{key}.{EXTENSIONS.get(fmt, 'img')}"
    if not (out_dir / full_rel).exists():
        blobs.copy_to(key, out_dir / full_rel)
    if not (out_dir / thumb_rel).exists():
        thumb.thumbnail((thumb_size, thumb_size), PILImage.Resampling.LANCZOS)
        thumb.save(out_dir / thumb_rel, format="JPEG", quality=85, optimize=True)
    return Picture(thumb_rel, full_rel, size)


def _figure(picture: Picture, caption: str) -> str:
    if picture.thumb is None or picture.size is None:
        return (
            f'<figure><div class="missing">image unavailable</div>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    width, height = picture.size
    return (
        f'<figure><a href="{html.escape(picture.full or "")}">'
        f'<img src="{html.escape(picture.thumb)}" alt="{html.escape(caption)}" '
        f"></a><figcaption>{html.escape(caption)} · {width}×{height}"
        "</figcaption></figure>"
    )


def _params(row: dict[str, Any]) -> str:
    items = [
        ("preset", row["preset"]),
        ("layers", row["layers"]),
        ("channel", row["channel"]),
        ("octaves", row["octaves"]),
        ("octave scale", row["octave_scale"]),
        ("steps", row["steps"]),
        ("step size", row["step_size"]),
        ("tile", row["tile"]),
        ("seed", row["seed"]),
        ("weights", row["weights_id"]),
        ("device", row["device"]),
        (
            "time",
            None if row["total_seconds"] is None else f"{row['total_seconds']:.1f} s",
        ),
        (
            "finished",
            None
            if row["finished_at"] is None
            else as_utc(row["finished_at"]).strftime("%Y-%m-%d %H:%M UTC"),
        ),
    ]
    return (
        "<dl>"
        + "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
            for k, v in items
            if v not in (None, "")
        )
        + "</dl>"
    )


def _link(url: str | None) -> str:
    if not url:
        return ""
    if url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(url)}" rel="noreferrer">{html.escape(url)}</a>'
    return html.escape(url)  # file:// and the like: shown, not linked


def _source(row: dict[str, Any]) -> str:
    parts = []
    if row["source_url"]:
        parts.append(f"Source: {_link(row['source_url'])}")
        if row["page_url"]:
            parts.append(f"on page {_link(row['page_url'])}")
    else:
        parts.append("Source: not recorded")
    lines = [" ".join(parts)]
    lines.append(f"Attribution: {html.escape(row['attribution'] or 'not given by the source')}")
    lines.append(f"Licence: {html.escape(row['licence'] or 'not given by the source')}")
    if row["keywords"]:
        lines.append(f"Keywords: {html.escape(row['keywords'])}")
    return '<div class="source">' + "<br>".join(lines) + "</div>"


def write_gallery(
    catalog: Catalog, query: Query, out_dir: Path, *, thumb_size: int = 320
) -> tuple[Path, int]:
    """Write ``out_dir/index.html`` for the finished stylizations ``query`` selects."""
    out_dir = Path(out_dir)
    (out_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    (out_dir / "full").mkdir(parents=True, exist_ok=True)
    rows = list_rows(catalog.engine, Query(query.kind, query.filters, COLUMNS, query.sort,
                                           query.limit))  # fmt: skip
    cards = []
    for row in rows:
        if not row["output_path"]:
            continue
        before = _picture(catalog.blobs, row["image_sha256"], out_dir, thumb_size)
        after = _picture(catalog.blobs, row["output_sha256"], out_dir, thumb_size)
        cards.append(
            f'<article class="card" id="s{row["stylization_id"]}">'
            f'<div class="pair">{_figure(before, "before")}{_figure(after, "after")}</div>'
            f"{_params(row)}{_source(row)}</article>"
        )
    filters = ", ".join(
        f"{name}={','.join(map(str, getattr(query.filters, name)))}"
        if isinstance(getattr(query.filters, name), tuple)
        else f"{name}={getattr(query.filters, name)}"
        for name in query.filters.used()
        if name != "status"
    )
    lead = f"{len(cards)} dreamed images, newest first" + (f" ({filters})" if filters else "")
    body = (
        f'<div class="grid">{"".join(cards)}</div>'
        if cards
        else '<p class="empty">No finished stylizations match. Run '
        "<code>dreamcrawl stylize</code> first, or loosen the filters.</p>"
    )
    page = out_dir / "index.html"
    page.write_text(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dreamcrawl gallery</title><style>{CSS}</style></head><body>"
        f'<h1>dreamcrawl gallery</h1><p class="lead">{html.escape(lead)}</p>{body}'
        "</body></html>\n",
        encoding="utf-8",
    )
    return page, len(cards)
