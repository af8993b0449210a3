"""Small builders shared by tests: real photos as bytes, catalog rows for them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from skimage import data as skdata

from storage.db import Catalog
from storage.records import ImageFacts, upsert_image

PHOTOS = ("chelsea", "astronaut", "coffee", "rocket")
REPO = Path(__file__).resolve().parents[1]


def photo_bytes(
    name: str = "chelsea", size: int = 96, fmt: str = "JPEG", quality: int = 90
) -> bytes:
    """A real photo from scikit-image, shrunk to ``size`` px wide, encoded as ``fmt``."""
    array = np.asarray(getattr(skdata, name)())
    image = PILImage.fromarray(array).convert("RGB")
    image.thumbnail((size, size * 4))
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=quality) if fmt == "JPEG" else image.save(buf, format=fmt)
    return buf.getvalue()


def facts_for(data: bytes) -> ImageFacts:
    """The catalog facts of encoded image bytes, as the crawler's validation finds them."""
    from crawler.validate import Limits, inspect_image

    return inspect_image(data, Limits(min_width=1, min_height=1))


def add_image(catalog: Catalog, data: bytes) -> int:
    """Store ``data`` as a blob and an image row; return the image id."""
    key = catalog.blobs.put_bytes(data)
    facts = facts_for(data)
    assert key == facts.sha256
    with catalog.session() as session:
        image_id, _ = upsert_image(session, facts)
    return image_id


def dreamcrawl(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``dreamcrawl`` CLI in a subprocess (environment: ours plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def visible_device_kind() -> str:
    """ "GPU" when TensorFlow sees one (dreams then run there), else "CPU"."""
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def done_stylization(image_id: int, output_key: str, tag: str = "a") -> Any:
    """A finished stylization row of ``image_id`` whose output is blob ``output_key``;
    ``tag`` makes its parameter and weights hashes distinct from another row's."""
    from storage.models import Stylization, StylizationStatus

    return Stylization(
        image_id=image_id,
        params_json="{}",
        params_hash=tag * 64,
        weights_id="w",
        weights_sha256=chr(ord(tag) + 1) * 64,
        code_version="t",
        output_blob_key=output_key,
        output_sha256=output_key,
        status=StylizationStatus.DONE,
    )


def demo_crawl(base_url: str, **options: Any) -> dict[str, Any]:
    """Flow parameters for a crawl of the demo site on 127.0.0.1 for its cats."""
    return {"keywords": ["cat"], "start_urls": [base_url], "allow_private": True, **options}
