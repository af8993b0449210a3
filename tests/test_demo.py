"""`dreamcrawl demo`, the README's main job, end to end in a fresh data folder."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from storage.db import open_catalog
from storage.integrity import check
from storage.models import Image, Rejection, Stylization, StylizationStatus
from storage.settings import Settings
from tests.helpers import dreamcrawl


def test_demo_crawls_dreams_and_writes_a_gallery(
    settings: Settings,
    converted_weights: Path,
    tmp_path: Path,
) -> None:
    env = {
        "DREAMCRAWL_WEIGHTS": str(converted_weights),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    result = dreamcrawl("demo", "--steps", "2", env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"Gallery: file://(\S+)\s+\((\d+) before/after pairs\)", result.stdout)
    assert match, result.stdout
    page, pairs = Path(match.group(1)), int(match.group(2))
    assert page == settings.home / "gallery" / "index.html"
    assert "Try next:" in result.stdout

    catalog = open_catalog(settings)
    with catalog.session() as session:
        images = session.scalar(sa.select(sa.func.count()).select_from(Image))
        done = session.scalars(
            sa.select(Stylization).where(Stylization.status == StylizationStatus.DONE)
        ).all()
        reasons = set(session.scalars(sa.select(Rejection.reason)))
    assert images >= 3  # a cat, space pictures and coffee at least
    assert pairs == len(done) >= 3
    assert reasons  # the site's broken and robots-protected images are explained
    html = page.read_text()
    for row in done:
        assert f'id="s{row.id}"' in html
    # Every picture the page shows is a file beside it: the gallery works offline.
    for src in re.findall(r'src="([^"]+)"', html):
        assert (page.parent / src).is_file(), src
    assert check(catalog) == []
