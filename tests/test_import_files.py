"""`dreamcrawl import`: the user's own files through the crawler's validation."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from crawler import import_paths
from crawler.validate import Limits
from pipeline.cli import main
from storage.db import open_catalog
from storage.integrity import check
from storage.models import CrawlRun, Rejection, Sighting
from storage.models import Image as ImageRow
from storage.settings import Settings
from tests.helpers import dreamcrawl
from tests.site_fixture import encode, jpeg, photo

DREAMCRAWL = str(Path(sys.executable).with_name("dreamcrawl"))


def make_tree(root: Path) -> dict[str, Path]:
    files = {
        "a": root / "cats" / "tabby.jpg",
        "b": root / "cats" / "launch.png",
        "copy": root / "cats" / "nested" / "tabby-again.jpg",
        "notes": root / "notes.txt",
        "tiny": root / "tiny.png",
        "hidden": root / ".thumbs" / "x.jpg",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    files["a"].write_bytes(jpeg("chelsea", 200))
    files["copy"].write_bytes(files["a"].read_bytes())
    files["b"].write_bytes(encode(photo("rocket", 180), "PNG"))
    files["notes"].write_text("not an image")
    files["tiny"].write_bytes(encode(Image.new("RGB", (10, 10)), "PNG"))
    files["hidden"].write_bytes(jpeg("coffee"))
    return files


def test_import_walks_folders_and_explains_every_file(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = make_tree(tmp_path / "photos")
    assert main(["import", str(tmp_path / "photos"), "--keyword", "cat", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "finished"
    assert (result["new_images"], result["duplicates"]) == (2, 1)
    assert result["rejected"] == {"not-image": 1, "too-small": 1}
    catalog = open_catalog(Settings.from_env())
    with catalog.session() as session:
        run = session.get(CrawlRun, result["run_id"])
        sightings = {s.url: s for s in session.scalars(select(Sighting))}
        rejections = {r.url: r.reason for r in session.scalars(select(Rejection))}
    assert (run.kind, run.sources, run.keywords) == ("import", ["file"], ["cat"])
    assert files["hidden"].as_uri() not in sightings | rejections
    assert set(sightings) == {files[k].as_uri() for k in ("a", "b", "copy")}
    assert sightings[files["copy"].as_uri()].duplicate
    assert sightings[files["a"].as_uri()].source == "file"
    assert {"keyword": "cat", "where": "folder", "text": "photos cats"} in sightings[
        files["b"].as_uri()
    ].matches
    assert rejections == {files["notes"].as_uri(): "not-image", files["tiny"].as_uri(): "too-small"}
    assert check(catalog) == []


def test_near_duplicates_can_be_skipped(settings: Settings, tmp_path: Path) -> None:
    original, close = tmp_path / "cat.jpg", tmp_path / "cat-small.jpg"
    original.write_bytes(jpeg("chelsea", 240))
    close.write_bytes(encode(photo("chelsea", 230), quality=55))
    first = import_paths([original], ["cat"])
    second = import_paths([close], ["cat"], near_duplicates="skip")
    kept = import_paths([close], ["cat"])  # the default keeps it, flagged
    assert first.counts["new_images"] == 1
    assert second.counts["rejected"] == {"near-duplicate": 1}
    assert second.counts["new_images"] == 0
    assert (kept.counts["new_images"], kept.counts["near_duplicates"]) == (1, 1)
    catalog = open_catalog(settings)
    assert len(list(catalog.blobs.iter_keys())) == 2 and check(catalog) == []


def test_special_files_are_rejected_one_by_one_and_the_rest_imported(
    settings: Settings, tmp_path: Path
) -> None:
    """A FIFO, a link to /dev/zero, a broken link and a link loop: each gets a rejection
    with its reason, none hangs or reads without bound, and the photos beside them are
    imported (a link to a regular file is followed)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a-cat.jpg").write_bytes(jpeg("chelsea", 200))
    (folder / "link-to-cat.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    (tmp_path / "elsewhere.jpg").write_bytes(jpeg("coffee", 200))
    os.mkfifo(folder / "b-fifo.jpg")
    (folder / "c-zero.jpg").symlink_to("/dev/zero")
    (folder / "d-broken.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "e-loop.jpg").symlink_to(folder / "e-loop.jpg")
    (folder / "z-last.png").write_bytes(encode(photo("rocket", 180), "PNG"))
    result = import_paths([folder], ["cat"], limits=Limits(max_bytes=1024 * 1024))
    assert result.status == "finished"
    assert result.counts["new_images"] == 3
    catalog = open_catalog(settings)
    with catalog.session() as session:
        rejections = {r.url: (r.reason, r.detail) for r in session.scalars(select(Rejection))}
    by_name = {url.rsplit("/", 1)[1]: why for url, why in rejections.items()}
    assert by_name["b-fifo.jpg"] == ("not-regular-file", "a FIFO (named pipe)")
    assert by_name["c-zero.jpg"] == ("not-regular-file", "a character device")
    assert by_name["d-broken.jpg"][0] == "unreadable"
    assert "No such file" in by_name["d-broken.jpg"][1]
    assert by_name["e-loop.jpg"][0] == "unreadable"
    assert "symbolic links" in by_name["e-loop.jpg"][1]
    assert set(by_name) == {"b-fifo.jpg", "c-zero.jpg", "d-broken.jpg", "e-loop.jpg"}
    assert check(catalog) == []


def test_a_file_that_grows_past_the_limit_is_cut_off_while_reading(
    settings: Settings, tmp_path: Path
) -> None:
    """The size bound holds while reading, not only from stat(): a FIFO given directly
    as the path is refused without blocking, and /dev/zero given directly likewise."""
    result = import_paths(["/dev/zero"], ["cat"], limits=Limits(max_bytes=1024))
    assert result.counts["rejected"] == {"not-regular-file": 1}
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    result = import_paths([fifo], ["cat"])
    assert result.counts["rejected"] == {"not-regular-file": 1}


def import_killed_midway(folder: Path, settings: Settings, files: int = 400) -> None:
    """Fill ``folder`` with ``files`` distinct JPEGs (same picture: a long import), start
    a real `dreamcrawl import` of it and SIGKILL it once its first rows are committed."""
    import signal
    import subprocess

    folder.mkdir()
    body = jpeg("chelsea", 200)
    for i in range(files):
        (folder / f"cat-{i:03d}.jpg").write_bytes(body + i.to_bytes(2, "big"))
    killed = subprocess.Popen([DREAMCRAWL, "import", str(folder), "-k", "cat"])
    catalog = open_catalog(settings)
    try:
        for _ in range(100_000):  # until its first rows commit (a read each time)
            with catalog.read_session() as session:
                if session.scalars(select(Sighting.id)).first() is not None:
                    break
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    with catalog.read_session() as session:
        assert session.get(CrawlRun, 1).status == "running"


def test_a_killed_import_is_marked_interrupted_by_the_next_one(
    settings: Settings, tmp_path: Path
) -> None:
    """An import killed with SIGKILL cannot say so itself; the next import (or crawl)
    finds its run `running` with nobody holding the run's lock, marks it `interrupted`
    and removes what its writer left, so `catalog check` stays clean."""
    import_killed_midway(tmp_path / "many", settings)
    single = tmp_path / "one.jpg"
    single.write_bytes(jpeg("coffee", 200))
    assert import_paths([single], ["cat"]).status == "finished"
    catalog = open_catalog(settings)
    with catalog.read_session() as session:
        run = session.get(CrawlRun, 1)
    assert run.status == "interrupted" and "killed" in run.error
    assert check(catalog) == []


def test_importing_the_same_folder_again_finishes_a_killed_import(
    settings: Settings, tmp_path: Path
) -> None:
    """An import run cannot be resumed (it has no queue: the folder is its queue), so
    the way to finish a killed one is to import the same folder again: every file ends
    as one image, the files the killed run had done become duplicate sightings of their
    image, not second images, and `catalog check` is clean."""
    folder = tmp_path / "many"
    import_killed_midway(folder, settings, files=300)
    again = import_paths([folder], ["cat"])
    assert again.status == "finished"
    catalog = open_catalog(settings)
    with catalog.read_session() as session:
        assert session.get(CrawlRun, 1).status == "interrupted"
        first = session.scalars(select(Sighting).where(Sighting.crawl_run_id == 1)).all()
        second = session.scalars(select(Sighting).where(Sighting.crawl_run_id == 2)).all()
        images = session.scalar(select(func.count()).select_from(ImageRow))
    assert 0 < len(first) < 300  # killed midway
    assert images == 300  # one per file, none twice
    assert len(second) == 300 and {s.url for s in second} == {p.as_uri() for p in folder.iterdir()}
    done_before = {s.image_id for s in first}
    assert {s.image_id for s in second if s.duplicate} == done_before
    assert all(not s.duplicate for s in second if s.image_id not in done_before)
    assert check(catalog) == []
    resume = dreamcrawl("crawl", "--resume", "1")
    assert resume.returncode == 2 and len(resume.stderr.strip().splitlines()) == 1
    told = "run 1 is an import, which is not resumed: import the same files again"
    assert f"{told} (dreamcrawl import {folder}" in resume.stderr
