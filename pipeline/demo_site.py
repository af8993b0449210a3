"""The bundled demo site: keyword-labelled sample photos served on 127.0.0.1.

The photos are the sample images scikit-image ships (a dependency), so the demo and the
tests need no internet. Pages label them the ways real sites do (alt text, figure
captions, titles, file names), and the site includes what a crawler meets in the wild:
the same photo at two URLs, a robots.txt-disallowed folder, a broken image and an
off-topic picture.
"""

from __future__ import annotations

import html
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class DemoPhoto:
    slug: str
    sample: str  # skimage.data function name
    page: str
    alt: str
    caption: str


PHOTOS = (
    DemoPhoto("tabby-cat", "chelsea", "animals", "a tabby cat looking up", "Chelsea the cat"),
    DemoPhoto("astronaut", "astronaut", "space", "an astronaut in her suit", "Astronaut portrait"),
    DemoPhoto("rocket", "rocket", "space", "a rocket on the launch pad", "Rocket before launch"),
    DemoPhoto("deep-field", "hubble_deep_field", "space", "galaxies", "Galaxies in deep space"),
    DemoPhoto("coffee", "coffee", "kitchen", "a cup of coffee", "Morning coffee"),
    DemoPhoto("eye", "retina", "science", "retina of an eye", "A retina, photographed"),
    DemoPhoto(
        "cells", "immunohistochemistry", "science", "stained cells", "Cells under a microscope"
    ),
)
PAGES = {
    "animals": "Animals: cats and other pets",
    "space": "Space: rockets, astronauts and galaxies",
    "kitchen": "Kitchen: coffee and breakfast",
    "science": "Science pictures",
}
DEMO_KEYWORDS = ("cat", "space", "coffee")


@cache
def photo_jpeg(sample: str, max_side: int = 640) -> bytes:
    """A bundled sample photo as JPEG, at most ``max_side`` px on its long side."""
    from skimage import data

    image = Image.fromarray(np.asarray(getattr(data, sample)())).convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _page(title: str, body: str) -> bytes:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}<p><a href='/'>home</a></p></body></html>"
    )
    return doc.encode()


def build_routes() -> dict[str, tuple[str, bytes, int]]:
    """Path → (content type, body, status) for every URL of the site."""
    routes: dict[str, tuple[str, bytes, int]] = {}
    links = "".join(
        f"<li><a href='/{name}.html'>{html.escape(t)}</a></li>" for name, t in PAGES.items()
    )
    routes["/"] = (
        "text/html; charset=utf-8",
        _page("dreamcrawl demo site", f"<ul>{links}</ul>"),
        200,
    )
    routes["/robots.txt"] = ("text/plain", b"User-agent: *\nDisallow: /private/\n", 200)
    for name, title in PAGES.items():
        figures = []
        for photo in (p for p in PHOTOS if p.page == name):
            src = f"/photos/{photo.slug}.jpg"
            routes[src] = ("image/jpeg", photo_jpeg(photo.sample), 200)
            figures.append(
                f"<figure><img src='{src}' alt='{html.escape(photo.alt)}'>"
                f"<figcaption>{html.escape(photo.caption)}</figcaption></figure>"
            )
        if name == "animals":
            # The same cat at a second URL (a duplicate), a private photo robots.txt
            # forbids, and a broken file: each ends in the catalog with its reason.
            routes["/mirror/cat-copy.jpg"] = ("image/jpeg", photo_jpeg("chelsea"), 200)
            figures.append("<img src='/mirror/cat-copy.jpg' alt='the same cat again'>")
            routes["/private/cat.jpg"] = ("image/jpeg", photo_jpeg("chelsea", 320), 200)
            figures.append("<img src='/private/cat.jpg' alt='a private cat'>")
            routes["/photos/broken-cat.jpg"] = ("image/jpeg", photo_jpeg("chelsea")[:900], 200)
            figures.append("<img src='/photos/broken-cat.jpg' alt='a cat that never loads'>")
        routes[f"/{name}.html"] = ("text/html; charset=utf-8", _page(title, "".join(figures)), 200)
    return routes


@contextmanager
def serve_demo_site(port: int = 0) -> Iterator[str]:
    """Serve the site on 127.0.0.1 (a free port by default); yield its base URL."""
    routes = build_routes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body, status = routes.get(
                self.path.split("?")[0], ("text/plain", b"not found", 404)
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
