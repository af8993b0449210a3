"""`dreamcrawl catalog list` and `show` on SQLite and PostgreSQL, through the real CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.commands.catalog import KIND_NAMES
from storage.db import Catalog
from storage.queries import KINDS, Filters, Query, list_rows, parse_sort, plan_keywords
from storage.records import ImageFacts, upsert_image
from tests.catalog_data import build


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    assert main(["catalog", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def ids(capsys: pytest.CaptureFixture[str], *argv: str) -> list[int]:
    kind = "stylizations"
    if "--kind" in argv:
        kind = argv[argv.index("--kind") + 1]
    key = KINDS[kind].id_column
    return [row[key] for row in cli_json(capsys, "list", *argv)]


def test_cli_kinds_match_the_query_module() -> None:
    assert tuple(KINDS) == KIND_NAMES


def test_list_filters(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    b = build(catalog)
    s = b.stylizations
    # Newest first by default.
    assert ids(capsys) == [s["coffee_fast"], s["astronaut_classic"], s["chelsea_single"],
                           s["chelsea_fast"]]  # fmt: skip
    assert ids(capsys, "--keyword", "cat") == [s["chelsea_single"], s["chelsea_fast"]]
    assert ids(capsys, "--keyword", "CAT", "--keyword", "space") == [
        s["astronaut_classic"],
        s["chelsea_single"],
        s["chelsea_fast"],
    ]
    assert ids(capsys, "--source", "local") == [s["coffee_fast"], s["chelsea_single"],
                                               s["chelsea_fast"]]  # fmt: skip
    assert ids(capsys, "--preset", "fast") == [s["coffee_fast"], s["chelsea_fast"]]
    assert ids(capsys, "--layer", "mixed4") == [s["astronaut_classic"], s["chelsea_single"]]
    assert ids(capsys, "--layer", "mixed1") == []  # mixed10 must not match mixed1
    assert ids(capsys, "--status", "done") == [s["astronaut_classic"], s["chelsea_fast"]]
    assert ids(capsys, "--preset", "fast", "--status", "done", "--keyword", "cat") == [
        s["chelsea_fast"]
    ]
    # Dates: created at T0+30h .. T0+33h (2026-03-02 18:00 .. 21:00 UTC).
    assert ids(capsys, "--since", "2026-03-02T19:30") == [s["coffee_fast"],
                                                          s["astronaut_classic"]]  # fmt: skip
    assert ids(capsys, "--until", "2026-03-02T19:00") == [s["chelsea_fast"]]
    assert len(ids(capsys, "--until", "2026-03-02")) == 4  # a bare date includes the day
    assert ids(capsys, "--until", "2026-03-01") == []
    assert ids(capsys, "--run", str(b.runs["crawl"]), "--sort", "stylization_id") == [
        s["chelsea_fast"],
        s["chelsea_single"],
        s["astronaut_classic"],
    ]
    assert ids(capsys, "--limit", "1") == [s["coffee_fast"]]
    assert ids(capsys, "--sort", "preset,stylization_id:desc") == [
        s["astronaut_classic"],
        s["coffee_fast"],
        s["chelsea_fast"],
        s["chelsea_single"],
    ]

    im = b.images
    assert ids(capsys, "--kind", "images", "--preset", "fast", "--sort", "image_id") == [
        im["chelsea"],
        im["coffee"],
    ]
    assert ids(capsys, "--kind", "images", "--keyword", "coffee") == [im["coffee"]]
    assert ids(capsys, "--kind", "images", "--layer", "mixed10") == [im["astronaut"]]
    assert ids(capsys, "--kind", "runs", "--keyword", "cat", "--sort", "crawl_run_id") == [
        b.runs["crawl"],
        b.runs["import"],
    ]
    assert ids(capsys, "--kind", "runs", "--status", "failed") == [b.runs["failed"]]
    assert ids(capsys, "--kind", "runs", "--source", "local") == [b.runs["import"]]
    rejected = cli_json(capsys, "list", "--kind", "rejections", "--reason", "too-small",
                        "--sort", "rejection_id")  # fmt: skip
    assert [r["url"].rsplit("/", 1)[1] for r in rejected] == ["tiny.gif", "tiny2.gif"]
    assert {r["run_keywords"] for r in rejected} == {"cat,space"}


def test_list_columns_json_and_table(catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    build(catalog)
    got = cli_json(capsys, "list", "--status", "done", "--columns", "preset,created_at,layers")
    assert got == [
        {
            "preset": "classic",
            "created_at": "2026-03-02T20:00:00+00:00",
            "layers": "mixed4,mixed10",
        },
        {"preset": "fast", "created_at": "2026-03-02T18:00:00+00:00", "layers": "mixed3,mixed5"},
    ]
    full = cli_json(capsys, "list", "--limit", "1")
    assert list(full[0]) == list(KINDS["stylizations"].view.column_names)

    assert main(["catalog", "list", "--status", "done", "--columns", "stylization_id,preset"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "classic" in line or "fast" in line]
    assert len(lines) == 2
    # Aligned: the preset column starts at the same offset on every row.
    header = next(line for line in out.splitlines() if "preset" in line)
    assert {line.index("│", 2) for line in lines} == {header.index("┃", 2)}


def test_show_lineage_by_id_and_prefix(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    b = build(catalog)
    by_prefix = cli_json(capsys, "show", b.sha["chelsea"][:8].upper())
    by_id = cli_json(capsys, "show", str(b.images["chelsea"]))
    assert by_prefix == by_id
    data = by_id
    assert data["image"]["sha256"] == b.sha["chelsea"]
    assert [s["url"] for s in data["sightings"]] == [
        "http://127.0.0.1:8000/img/chelsea.jpg",
        "file:///photos/chelsea-copy.jpg",
    ]
    assert data["sightings"][0]["matches"] == [
        {"keyword": "cat", "where": "alt", "text": "a tabby cat"}
    ]
    assert [r["id"] for r in data["crawl_runs"]] == [b.runs["crawl"], b.runs["import"]]
    # The later import rejected the crawl's URL as a duplicate: that belongs to its story.
    assert [(r["reason"], r["crawl_run_id"]) for r in data["rejections"]] == [
        ("duplicate", b.runs["import"])
    ]
    styl = {s["stylization_id"]: s for s in data["stylizations"]}
    fast = styl[b.stylizations["chelsea_fast"]]
    assert fast["params"]["layers"] == {"mixed3": 1.0, "mixed5": 1.5}
    assert fast["octave_timings"] == [0.5, 0.75, 1.25]
    assert fast["weights_sha256"].startswith("7ff4a85c")
    assert fast["objective_values"] == {"final": 12.5}
    assert styl[b.stylizations["chelsea_single"]]["error"] == "out of memory"

    assert main(["catalog", "show", str(b.images["astronaut"])]) == 0
    text = capsys.readouterr().out
    for expected in ("NASA", "mixed4,mixed10", "classic", "stylization", "rejections"):
        assert expected in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--since", "yesterday"], "bad --since value 'yesterday'"),
        (["list", "--until", "2026-13-01"], "bad --until value"),
        (["list", "--status", "finished"], "unknown --status 'finished' for stylizations"),
        (["list", "--kind", "runs", "--status", "done"], "unknown --status 'done' for runs"),
        (["list", "--layer", "mixed11"], "unknown --layer 'mixed11'"),
        (["list", "--kind", "runs", "--preset", "fast"], "--preset does not apply to runs"),
        (["list", "--columns", "preset,nope"], "unknown column 'nope' in --columns"),
        (["list", "--sort", "speed"], "unknown column 'speed' in --sort"),
        (["list", "--sort", "preset:sideways"], "bad --sort direction"),
        (["list", "--since", "2026-03-02", "--until", "2026-03-01"], "--since must be earlier"),
        (["list", "--kind", "pictures"], "invalid choice: 'pictures'"),
        (["list", "--run", "one"], "invalid int value: 'one'"),
        (["show", "zz"], "no image 'zz'"),
        (["show", "999999"], "no image with id or sha256 prefix '999999'"),
        (["export", "out.xlsx"], "cannot tell the export format"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    catalog: Catalog,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    capsys.readouterr()
    try:
        code = main(["catalog", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err


def test_show_refuses_an_ambiguous_prefix(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    with catalog.session() as session:
        for tail in ("1", "2"):
            facts = ImageFacts(sha256="abcd" + tail * 60, width=1, height=1, format="PNG", bytes=1)
            upsert_image(session, facts)
    capsys.readouterr()
    assert main(["catalog", "show", "abcd"]) == 2
    assert "matches more than one image" in capsys.readouterr().err
    assert main(["catalog", "show", "abcd2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["image"]["sha256"] == "abcd" + "2" * 60


@pytest.mark.parametrize("kind", ["stylizations", "images"])
def test_keyword_lookup_and_scan_agree(catalog: Catalog, kind: str) -> None:
    build(catalog)
    k = KINDS[kind]
    for keywords, extra in (
        (("cat",), {}),
        (("CAT", "space"), {}),
        (("coffee",), {"preset": ("fast",)}),
        (("nowhere",), {}),
    ):
        query = Query(k, Filters(keyword=keywords, **extra), sort=parse_sort(k, None), limit=2)
        got = {
            plan: [r[k.id_column] for r in list_rows(catalog.engine, query, keyword_lookup=plan)]
            for plan in (True, False, None)
        }
        assert got[True] == got[False] == got[None], (keywords, got)
    # The automatic plan uses the lookup when few sightings match (all of them here).
    with catalog.engine.connect() as conn:
        query = Query(k, Filters(keyword=("cat",)))
        assert plan_keywords(conn, query) == ['["cat"]']
