"""A real HTTP server on 127.0.0.1 for crawler tests and benchmarks.

:class:`LocalSite` serves a table of routes from a threaded ``http.server``: fixed bodies,
redirects, or handler functions for the hostile cases (a slow drip, a stream that never
ends, a 500 that succeeds on retry). It counts the requests each path received, so tests
can prove what the crawler did and did not fetch.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
from PIL import Image
from skimage import data as skdata

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    handler: Handler | None = None


class LocalSite:
    """Routes by path; ``url(path)`` gives the absolute URL on this server."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.queries: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.base_url = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def page(self, path: str, html: str, **kwargs: object) -> None:
        self.routes[path] = Route(html.encode(), **kwargs)  # type: ignore[arg-type]

    def file(self, path: str, body: bytes, content_type: str, **kwargs: object) -> None:
        self.routes[path] = Route(body, content_type, **kwargs)  # type: ignore[arg-type]

    def redirect(self, path: str, target: str, status: int = 302) -> None:
        self.routes[path] = Route(status=status, headers={"Location": target})

    def handle(self, path: str, handler: Handler) -> None:
        self.routes[path] = Route(handler=handler)

    def hit_count(self, path: str) -> int:
        with self.lock:
            return self.hits[path]


def _make_handler(site: LocalSite) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            with site.lock:
                site.hits[path] += 1
                site.user_agents.add(self.headers.get("User-Agent", ""))
                site.queries.setdefault(path, []).append(parts.query)
            route = site.routes.get(path)
            if route is None:
                route = Route(b"not found", "text/plain", status=404)
            if route.handler is not None:
                route.handler(self)
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(route.body)

    return RequestHandler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a crawler opens many connections at once


@contextmanager
def serve(site: LocalSite, host: str = "127.0.0.1", port: int = 0) -> Iterator[LocalSite]:
    """Run ``site`` on ``host`` (127.0.0.1; a free port unless given) for the block."""
    server = _Server((host, port), _make_handler(site))
    site.base_url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


# -- real photos -------------------------------------------------------------------

PHOTOS = (
    "chelsea", "astronaut", "coffee", "rocket", "camera", "moon", "coins",
    "hubble_deep_field", "immunohistochemistry", "clock", "brick", "grass", "gravel",
    "retina", "colorwheel", "cell", "text", "page",
)  # fmt: skip


def photo(name: str, width: int = 200) -> Image.Image:
    """A scikit-image sample photo as RGB, ``width`` pixels wide."""
    array = np.asarray(getattr(skdata, name)())
    image = Image.fromarray(array).convert("RGB")
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG" and "quality" not in params:
        params["quality"] = 90
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def jpeg(name: str, width: int = 200, **params: object) -> bytes:
    return encode(photo(name, width), "JPEG", **params)


_BASES = ("retina", "hubble_deep_field", "astronaut", "coffee", "rocket", "chelsea",
          "immunohistochemistry", "camera", "moon", "brick", "grass", "gravel")  # fmt: skip


def distinct_photos(count: int, width: int = 160, quality: int = 85) -> Iterator[bytes]:
    """``count`` different JPEGs: crops of the sample photos at varying places and sizes."""
    cache: dict[str, Image.Image] = {}
    for i in range(count):
        name = _BASES[i % len(_BASES)]
        if name not in cache:
            cache[name] = Image.fromarray(np.asarray(getattr(skdata, name)())).convert("RGB")
        base = cache[name]
        step = i // len(_BASES)
        side = min(base.size) * (0.5 + 0.45 * ((step * 7) % 11) / 10)
        x = (step * 37) % max(1, int(base.width - side))
        y = (step * 53) % max(1, int(base.height - side))
        crop = base.crop((x, y, x + int(side), y + int(side * 0.75)))
        height = round(width * crop.height / crop.width)
        yield encode(crop.resize((width, height), Image.Resampling.BILINEAR), quality=quality)
