"""A generated site of real photos plus every hostile case the crawler must survive.

``EXPECTED`` says where each URL must end after a crawl with keywords ``cat`` and
``rocket``, ``--depth 1`` and the small limits of ``TEST_OVERRIDES``:
``image`` (a new image), ``twin`` (a sighting of the same photo as the other twins: the
first stored is the original, the others duplicates or near-duplicates, in whatever
order the downloads finish), ``rejected:<reason>``, or ``absent`` (never considered: no
row, never fetched).
"""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

import numpy as np
from PIL import Image

from tests.site_fixture import LocalSite, encode, jpeg, photo

KEYWORDS = ("cat", "rocket")
MAX_BYTES = 1_000_000
TEST_OVERRIDES = (
    "DOWNLOAD_TIMEOUT=1",
    "RETRY_TIMES=1",
    f"DOWNLOAD_MAXSIZE={MAX_BYTES}",
    "AUTOTHROTTLE_ENABLED=False",
)
OFFSITE = "http://elsewhere.example"

EXPECTED: dict[str, str] = {
    "/img/chelsea.jpg": "twin",
    "/img/rocket.png": "image",
    "/img/coffee-cat.jpg": "image",
    "/img/astronaut-cat.jpg": "image",
    "/img/astro-small.jpg": "absent",  # the smaller srcset candidate
    "/img/pic-cat.webp": "image",
    "/img/og-cat.jpg": "image",
    "/img/linked-cat.jpg": "image",
    "/img/chelsea-copy.jpg": "twin",  # the same bytes
    "/img/chelsea-reencoded.jpg": "twin",  # resized a little, re-encoded at quality 60
    "/img/cat-photo": "image",  # a JPEG served as text/html
    "/img/html-as-jpeg-cat.jpg": "rejected:not-image",  # HTML served as image/jpeg
    "/img/truncated-cat.jpg": "rejected:truncated",
    "/img/bomb-cat.png": "rejected:bomb",
    "/img/huge-cat.jpg": "rejected:too-large",
    "/img/redirect-cat.jpg": "image",
    "/img/loop-cat.jpg": "rejected:redirect-loop",
    "/img/missing-cat.jpg": "rejected:http-404",
    "/img/flaky-cat.jpg": "image",
    "/img/slow-cat.jpg": "rejected:timeout",
    "/img/broken-page-cat.jpg": "image",
    "/img/vector-cat.svg": "rejected:unsupported-format",
    "/img/animated-cat.gif": "image",
    "/img/cmyk-cat.jpg": "image",
    "/img/deep-cat.png": "image",
    "/img/rotated-cat.jpg": "image",
    "/img/pixel-cat.gif": "rejected:too-small",
    "/img/noai-cat.jpg": "rejected:x-robots-tag",
    "/private/secret-cat.jpg": "rejected:robots",
    "/private/page.html": "rejected:robots",
    OFFSITE + "/cat.jpg": "rejected:off-domain",
    OFFSITE + "/page.html": "rejected:off-domain",
    "/img/gravel.jpg": "rejected:irrelevant",
    "/missing-page.html": "rejected:http-404",
    "/img/page2-cat.jpg": "image",
    "/img/page3-cat.jpg": "absent",  # on a page beyond --depth 1
}

INDEX = f"""<!doctype html>
<html><head><title>Photo gallery</title>
<meta property="og:image" content="/img/og-cat.jpg">
<meta property="og:title" content="The cat of the day">
</head><body>
<h1>Gallery</h1>
<img src="/img/chelsea.jpg" alt="Chelsea the cat">
<figure><img src="/img/rocket.png"><figcaption>A rocket on the launch pad</figcaption></figure>
<img data-src="/img/coffee-cat.jpg" alt="morning coffee">
<img srcset="/img/astro-small.jpg 100w, /img/astronaut-cat.jpg 400w" alt="space cat">
<picture><source srcset="/img/pic-cat.webp" type="image/webp"><img alt="cat"></picture>
<p>Full size: <a href="/img/linked-cat.jpg">one more cat</a></p>
<img src="/img/chelsea-copy.jpg" alt="the same cat again">
<img src="/img/chelsea-reencoded.jpg" alt="a cat, re-encoded">
<img src="/img/cat-photo" alt="a cat without extension">
<img src="/img/html-as-jpeg-cat.jpg" alt="cat">
<img src="/img/truncated-cat.jpg" alt="cat">
<img src="/img/bomb-cat.png" alt="cat">
<img src="/img/huge-cat.jpg" alt="cat">
<img src="/img/redirect-cat.jpg" alt="cat">
<img src="/img/loop-cat.jpg" alt="cat">
<img src="/img/missing-cat.jpg" alt="cat">
<img src="/img/flaky-cat.jpg" alt="cat">
<img src="/img/slow-cat.jpg" alt="cat">
<img src="/img/vector-cat.svg" alt="cat">
<img src="/img/animated-cat.gif" alt="cat">
<img src="/img/cmyk-cat.jpg" alt="cat">
<img src="/img/deep-cat.png" alt="cat">
<img src="/img/rotated-cat.jpg" alt="cat">
<img src="/img/pixel-cat.gif" alt="">
<img src="/img/noai-cat.jpg" alt="cat">
<img src="/private/secret-cat.jpg" alt="cat">
<img src="{OFFSITE}/cat.jpg" alt="cat">
<img src="/img/gravel.jpg" alt="gravel texture">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="inline cat">
<a href="/page2.html">more photos</a> <a href="/broken.html">broken</a>
<a href="/private/page.html">private</a> <a href="{OFFSITE}/page.html">elsewhere</a>
<a href="/missing-page.html">gone</a> <a href="mailto:me@example.org">mail</a>
</body></html>"""

PAGE2 = """<html><head><title>Cat photos, page 2</title></head><body>
<img src="/img/page2-cat.jpg"><a href="/page3.html">next</a></body></html>"""
PAGE3 = """<html><head><title>Cat photos, page 3</title></head><body>
<img src="/img/page3-cat.jpg"></body></html>"""
BROKEN = """<html><body><div><p>unclosed <b>tags <img src="/img/broken-page-cat.jpg"
alt="cat in broken html"><table><tr><td>cell</div></span></html"""


def _flaky(site: LocalSite, body: bytes) -> object:
    def handler(request: BaseHTTPRequestHandler) -> None:
        if site.hit_count("/img/flaky-cat.jpg") == 1:
            request.send_response(500)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        _send(request, body, "image/jpeg")

    return handler


def _send(request: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    request.send_response(200)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def _slow_drip(request: BaseHTTPRequestHandler) -> None:
    """Headers, then one byte at a time, far slower than the crawler's timeout."""
    request.send_response(200)
    request.send_header("Content-Type", "image/jpeg")
    request.send_header("Content-Length", "100000")
    request.end_headers()
    try:
        for _ in range(300):
            request.wfile.write(b"\xff")
            request.wfile.flush()
            time.sleep(0.1)  # the server's pace; the test never waits on it
    except OSError:
        return  # the crawler hung up, as it should


def _endless(request: BaseHTTPRequestHandler) -> None:
    """A stream with no Content-Length that goes on past the size limit."""
    request.send_response(200)
    request.send_header("Content-Type", "image/jpeg")
    request.send_header("Connection", "close")
    request.end_headers()
    chunk = b"\xff\xd8" + b"\0" * 65534
    try:
        for _ in range(4 * MAX_BYTES // len(chunk)):
            request.wfile.write(chunk)
    except OSError:
        return
    request.close_connection = True


def bomb_png() -> bytes:
    """A small PNG that claims 12,000 x 12,000 pixels (144 M)."""
    return encode(Image.new("1", (12_000, 12_000)), "PNG", optimize=True)


def build(site: LocalSite) -> LocalSite:
    """Fill ``site`` with the gallery; returns it."""
    chelsea = jpeg("chelsea", 240)
    site.page("/", INDEX)
    site.page("/page2.html", PAGE2)
    site.page("/page3.html", PAGE3)
    site.page("/broken.html", BROKEN)
    site.file("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.file("/img/chelsea.jpg", chelsea, "image/jpeg")
    site.file("/img/chelsea-copy.jpg", chelsea, "image/jpeg")
    reencoded = photo("chelsea", 236)
    site.file("/img/chelsea-reencoded.jpg", encode(reencoded, quality=60), "image/jpeg")
    site.file("/img/rocket.png", encode(photo("rocket", 220), "PNG"), "image/png")
    site.file("/img/coffee-cat.jpg", jpeg("coffee"), "image/jpeg")
    site.file("/img/astronaut-cat.jpg", jpeg("astronaut"), "image/jpeg")
    site.file("/img/astro-small.jpg", jpeg("astronaut", 100), "image/jpeg")
    site.file("/img/pic-cat.webp", encode(photo("immunohistochemistry"), "WEBP"), "image/webp")
    site.file("/img/og-cat.jpg", jpeg("colorwheel"), "image/jpeg")
    site.file("/img/linked-cat.jpg", jpeg("clock"), "image/jpeg")
    site.file("/img/cat-photo", jpeg("camera"), "text/html")
    site.file("/img/html-as-jpeg-cat.jpg", b"<html><body>cat</body></html>", "image/jpeg")
    site.file("/img/truncated-cat.jpg", jpeg("brick", 400)[:-3000], "image/jpeg")
    site.file("/img/bomb-cat.png", bomb_png(), "image/png")
    site.handle("/img/huge-cat.jpg", _endless)
    site.redirect("/img/redirect-cat.jpg", "/r/2")
    site.redirect("/r/2", "/r/3", status=301)
    site.redirect("/r/3", "/img/redirect-target.jpg", status=307)
    site.file("/img/redirect-target.jpg", jpeg("retina"), "image/jpeg")
    site.redirect("/img/loop-cat.jpg", "/r/loop-b")
    site.redirect("/r/loop-b", "/img/loop-cat.jpg")
    site.handle("/img/flaky-cat.jpg", _flaky(site, jpeg("coins")))  # type: ignore[arg-type]
    site.handle("/img/slow-cat.jpg", _slow_drip)
    site.file("/img/broken-page-cat.jpg", jpeg("hubble_deep_field"), "image/jpeg")
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="200"/>'
    site.file("/img/vector-cat.svg", svg, "image/svg+xml")
    frames = [photo("grass", 160), photo("grass", 160).rotate(180)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    site.file("/img/animated-cat.gif", gif, "image/gif")
    site.file("/img/cmyk-cat.jpg", encode(photo("cell").convert("CMYK")), "image/jpeg")
    deep = Image.fromarray(np.asarray(photo("moon").convert("L"), np.uint16) * 257)
    site.file("/img/deep-cat.png", encode(deep, "PNG"), "image/png")
    rotated = photo("text", 240)  # landscape pixels, shown portrait (orientation 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    site.file("/img/rotated-cat.jpg", encode(rotated, exif=exif.tobytes()), "image/jpeg")
    site.file("/img/pixel-cat.gif", encode(Image.new("L", (1, 1)), "GIF"), "image/gif")
    site.file(
        "/img/noai-cat.jpg", jpeg("page"), "image/jpeg", headers={"X-Robots-Tag": "noimageai"}
    )
    site.file("/private/secret-cat.jpg", jpeg("rocket", 300), "image/jpeg")
    site.page("/private/page.html", "<html><title>cat</title></html>")
    site.file("/img/gravel.jpg", jpeg("gravel"), "image/jpeg")
    site.file("/img/page2-cat.jpg", jpeg("logo"), "image/jpeg")
    site.file("/img/page3-cat.jpg", jpeg("retina", 300), "image/jpeg")
    return site
