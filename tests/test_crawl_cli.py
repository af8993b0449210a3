"""Bad input to `dreamcrawl crawl` / `dreamcrawl import`: exit 2, one line, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.cli import main
from storage.db import open_catalog
from storage.models import CrawlRun
from storage.settings import Settings

SITE = ["crawl", "-k", "cat", "--start-url", "http://x.org/"]
CASES = {
    "no keyword": (["crawl", "--start-url", "http://example.org/"], "--keyword"),
    "blank keyword": (["crawl", "-k", " ", "--start-url", "http://example.org/"], "--keyword"),
    "nothing to crawl": (["crawl", "-k", "cat"], "--start-url"),
    "unknown source": (["crawl", "-k", "cat", "--source", "flickr"], "site, commons"),
    "site without url": (["crawl", "-k", "cat", "--source", "site"], "--start-url"),
    "bad start url": (["crawl", "-k", "cat", "--start-url", "ftp://x/"], "http(s)"),
    "negative depth": ([*SITE, "--depth", "-1"], "--depth"),
    "negative max": ([*SITE, "--max-images", "-3"], "--max-images"),
    "not a number": (["crawl", "-k", "cat", "--max-images", "many"], "invalid int"),
    "lowercase setting": ([*SITE, "-s", "depth=2"], "UPPER_CASE"),
    "unknown setting": ([*SITE, "-s", "DREAMCRAWL_NOPE=1"], "unknown setting"),
    "setting without value": ([*SITE, "-s", "DOWNLOAD_TIMEOUT"], "NAME=value"),
    "port out of range": (["crawl", "-k", "cat", "--start-url", "http://127.0.0.1:99999/"], "port"),
    "setting not a number": ([*SITE, "-s", "DOWNLOAD_TIMEOUT=abc"], "DOWNLOAD_TIMEOUT"),
    "setting not an integer": ([*SITE, "-s", "DREAMCRAWL_MIN_WIDTH=1.5"], "integer"),
    "setting not a boolean": ([*SITE, "-s", "ROBOTSTXT_OBEY=maybe"], "true or false"),
    "allowed network not CIDR": ([*SITE, "-s", "DREAMCRAWL_ALLOWED_NETWORKS=lan"], "CIDR"),
    "nameserver without port": ([*SITE, "-s", "DREAMCRAWL_DNS_SERVERS=ns1"], "IP:port"),
    "resume unknown run": (["crawl", "--resume", "999"], "no crawl run 999"),
    "resume with options": (["crawl", "--resume", "1", "-k", "cat"], "give no others"),
    "import missing path": (["import", "/no/such/folder", "-k", "cat"], "/no/such/folder"),
    "import without keyword": (["import", "."], "--keyword"),
}


@pytest.mark.parametrize("argv,needle", CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_with_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamcrawl"), captured.err
    assert needle in lines[0]
    assert captured.out == ""
    with open_catalog(settings).session() as session:
        assert session.execute(select(func.count()).select_from(CrawlRun)).scalar_one() == 0


def test_finished_run_cannot_be_resumed(settings: Settings, tmp_path: Path, capsys) -> None:
    (tmp_path / "x.txt").write_text("x")
    catalog = open_catalog(settings)
    with catalog.session() as session:
        session.add(CrawlRun(kind="crawl", keywords=["cat"], sources=["site"], status="finished"))
    assert main(["crawl", "--resume", "1"]) == 2
    assert "already finished" in capsys.readouterr().err
