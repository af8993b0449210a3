"""`dreamcrawl catalog gallery`, opened in a real headless Chromium.

The page is checked the way a person would see it: Chromium loads it from disk with no
network, a small script records whether every image decoded (``complete`` and a
non-zero ``naturalWidth``), including every full-size image a thumbnail links to, and
``--dump-dom`` hands the verdict back. A screenshot of the real page must show far more
colours than the same page without pictures (thumbnails rendered, not blank boxes).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image as PILImage

from pipeline.cli import main
from storage.db import Catalog
from tests.browser import CHROMIUM_FLAGS
from tests.catalog_data import build

CHECK_SCRIPT = """
<div id="link-check" hidden>%s</div>
<script>
window.addEventListener("load", () => {
  const bad = [];
  const imgs = Array.from(document.images);
  for (const img of imgs) {
    if (!(img.complete && img.naturalWidth > 0)) bad.push(img.getAttribute("src"));
  }
  const verdict = document.createElement("pre");
  verdict.id = "verdict";
  verdict.textContent = "images=" + imgs.length + " broken=" + JSON.stringify(bad);
  document.body.appendChild(verdict);
});
</script>
"""


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "Chromium is missing: run scripts/test-deps"
    return path


def run_chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("src"):
            self.srcs.append(values["src"] or "")
        if values.get("href"):
            self.hrefs.append(values["href"] or "")


def refs(page: Path) -> Refs:
    parser = Refs()
    parser.feed(page.read_text())
    return parser


def verdict_of(page: Path) -> str:
    """Open a copy of ``page`` that also loads every local link as an image."""
    local = [h for h in refs(page).hrefs if not h.startswith(("http://", "https://"))]
    probe = "".join(f'<img src="{h}" alt="">' for h in local)
    check = page.with_name("check.html")
    check.write_text(page.read_text().replace("</body>", CHECK_SCRIPT % probe + "</body>"))
    dom = run_chromium("--dump-dom", check.as_uri())
    check.unlink()
    start = dom.index('<pre id="verdict">') + len('<pre id="verdict">')
    return dom[start : dom.index("</pre>", start)]


def colours(png: bytes) -> int:
    with PILImage.open(io.BytesIO(png)) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 24) or [])


def test_gallery_renders_in_chromium(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    build(catalog)
    out = tmp_path / "gallery"
    assert main(["catalog", "gallery", str(out)]) == 0
    assert "wrote 2 before/after pairs" in capsys.readouterr().err
    page = out / "index.html"
    text = page.read_text()

    # Offline: every picture is a local file beside the page; only attribution links
    # point outside, and they are links, never resources the page loads.
    found = refs(page)
    assert len(found.srcs) == 4
    for ref in found.srcs + found.hrefs:
        if ref.startswith(("http://", "https://")):
            assert ref in text and ref not in found.srcs
        else:
            assert (out / ref).is_file(), ref
    expected = ("mixed3,mixed5", "mixed4,mixed10", "CC BY 4.0", "Public domain (NASA)")
    expected += ("Stéfan van der Walt", "octave scale", "http://127.0.0.1:8000/cats.html")
    expected += ("Shows: Egyptian cat 53%, tabby 29%", "Shows: crash helmet 14%, go-kart 11%")
    for snippet in expected:
        assert snippet in text
    # Thumbnails are real JPEGs no bigger than the thumbnail box.
    for src in found.srcs:
        with PILImage.open(out / src) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 320

    assert verdict_of(page) == "images=8 broken=[]"  # 4 thumbnails + 4 full-size images

    if catalog.engine.dialect.name == "sqlite":
        shot = tmp_path / "shot.png"
        run_chromium("--window-size=1400,900", f"--screenshot={shot}", page.as_uri())
        bare = tmp_path / "bare.html"
        bare.write_text(text.replace('src="thumbs/', 'data-src="thumbs/'))
        bare_shot = tmp_path / "bare.png"
        run_chromium("--window-size=1400,900", f"--screenshot={bare_shot}", bare.as_uri())
        assert colours(shot.read_bytes()) > 3 * colours(bare_shot.read_bytes())


def test_gallery_filters_and_missing_blobs(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    built = build(catalog)
    with catalog.session() as session:
        from storage.models import Stylization

        chelsea = session.get(Stylization, built.stylizations["chelsea_fast"])
        assert chelsea is not None and chelsea.output_blob_key
        catalog.blobs.delete(chelsea.output_blob_key)

    out = tmp_path / "cats"
    assert main(["catalog", "gallery", str(out), "--keyword", "cat"]) == 0
    assert "wrote 1 before/after pairs" in capsys.readouterr().err
    text = (out / "index.html").read_text()
    assert "image unavailable" in text and "NASA" not in text
    assert "keyword=cat" in text
    assert verdict_of(out / "index.html") == "images=2 broken=[]"  # the before picture

    empty = tmp_path / "none"
    assert main(["catalog", "gallery", str(empty), "--preset", "no-such-preset"]) == 0
    assert "No finished stylizations match" in (empty / "index.html").read_text()
