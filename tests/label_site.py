"""A small labelled test site: real photos and distractors whose alt text claims a keyword.

Each image sits alone on its own page (so no other image's text is "nearby"), linked
from the index. ``TRUTH`` says what each image really shows: the real photos
(scikit-image's chelsea, coffee and rocket, whole, cropped, mirrored and small) show
their keyword; the distractors (flat colours, text banners, logos, and real photos of
something else) only claim it in their alt text. Used by tests/test_labels_crawl.py and
benchmarks/bench_labels.py to measure keyword matching with and without
``--content-check``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps
from skimage import data as skdata

from tests.site_fixture import LocalSite, encode

KEYWORDS = ("cat", "coffee", "rocket")
SOURCES = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket"}


@dataclass(frozen=True)
class Entry:
    path: str  # the image's path on the site
    keyword: str  # what its alt text claims
    alt: str
    real: bool  # True: it shows the keyword; False: a distractor
    body: bytes


def _photo(name: str) -> Image.Image:
    return Image.fromarray(np.asarray(getattr(skdata, name)())).convert("RGB")


def _width(image: Image.Image, width: int) -> Image.Image:
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _centre(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    cw, ch = int(w * share), int(h * share)
    return image.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))


def real_variants(name: str) -> list[tuple[str, Image.Image]]:
    """The same real photo four ways: whole, centre crop, mirrored, small."""
    base = _photo(name)
    return [
        ("whole", _width(base, 320)),
        ("crop", _width(_centre(base, 0.75), 280)),
        ("mirror", _width(ImageOps.mirror(base), 300)),
        ("small", _width(base, 140)),
    ]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def banner(text: str, colours: tuple[str, str]) -> Image.Image:
    image = Image.new("RGB", (468, 120), colours[0])
    ImageDraw.Draw(image).text((20, 30), text, fill=colours[1], font=_font(48))
    return image


def logo(text: str, colour: str) -> Image.Image:
    image = Image.new("RGB", (240, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 20, 220, 220), fill=colour)
    draw.rectangle((70, 100, 170, 140), fill="white")
    draw.text((78, 104), text, fill=colour, font=_font(28))
    return image


def flat(colour: str) -> Image.Image:
    return Image.new("RGB", (300, 200), colour)


def distractors(keyword: str, index: int) -> list[tuple[str, Image.Image]]:
    """Four images that do not show ``keyword``: a banner, a logo, a flat colour, and a
    real photo of something else."""
    others = ("camera", "brick", "astronaut")
    colours = (("navy", "yellow"), ("white", "black"), ("darkred", "white"))
    return [
        ("banner", banner(f"{keyword.upper()} SALE", colours[index])),
        ("logo", logo(keyword[:5].upper(), ("teal", "orange", "purple")[index])),
        ("flat", flat(("lightgrey", "skyblue", "beige")[index])),
        ("other", _width(_photo(others[index]), 300)),
    ]


def entries() -> list[Entry]:
    """Every image of the site, real photos first."""
    found = []
    for index, keyword in enumerate(KEYWORDS):
        for how, image in real_variants(SOURCES[keyword]):
            path = f"/img/{keyword}-{how}.jpg"
            alt = f"a {keyword} ({how})"
            found.append(Entry(path, keyword, alt, True, encode(image)))
        for how, image in distractors(keyword, index):
            path = f"/img/d-{keyword}-{how}.png"
            alt = f"{keyword} {how}"
            found.append(Entry(path, keyword, alt, False, encode(image, "PNG")))
    return found


def build(site: LocalSite, items: list[Entry] | None = None) -> list[Entry]:
    """Put the pages and images of ``items`` (default: :func:`entries`) on ``site``."""
    items = entries() if items is None else items
    links = []
    for n, entry in enumerate(items):
        page = f"/p/{n}.html"
        site.page(
            page, f'<html><head><title>Page {n}</title></head><body><img src="{entry.path}" '
            f'alt="{entry.alt}"></body></html>',
        )  # fmt: skip
        ctype = "image/png" if entry.path.endswith(".png") else "image/jpeg"
        site.file(entry.path, entry.body, ctype)
        links.append(f'<a href="{page}">page {n}</a>')
    site.page("/", f"<html><head><title>Gallery</title></head><body>{''.join(links)}</body></html>")
    site.file("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")
    return items


def precision_recall(items: list[Entry], kept_paths: set[str]) -> tuple[float, float]:
    """Of the images kept, the share that really show their keyword; of those that do,
    the share kept."""
    kept = [e for e in items if e.path in kept_paths]
    real = [e for e in items if e.real]
    precision = sum(e.real for e in kept) / len(kept) if kept else 0.0
    recall = sum(e.path in kept_paths for e in real) / len(real) if real else 0.0
    return round(precision, 3), round(recall, 3)
