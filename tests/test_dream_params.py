"""Every dream parameter reaches the catalog row, from every surface.

One typed model (:class:`stylize.params.DreamParams`) carries the parameters from the
CLI flags of ``dream``, ``stylize`` and ``run`` and from the flows' form to the engine
and the stylization row. Each surface runs once with *every* field set to a value that
differs from the preset's; the checks are parametrized over the model's fields, so a
field added to the model without a sample here fails the suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.cli import build_parser
from pipeline.commands.dream_options import flag_of
from storage.db import open_catalog
from storage.models import Stylization
from storage.settings import Settings
from stylize.params import DreamParams
from tests.helpers import add_image, dreamcrawl, photo_bytes
from tests.site_fixture import LocalSite, serve

FIELDS = [name for name in DreamParams.model_fields if name != "presets"]

# field: (its flag's text, its value in the form's JSON, its value in the recorded
# parameters). Every value differs from the ``fast`` preset's.
SAMPLES: dict[str, tuple[str, Any, tuple[str, Any]]] = {
    "layers": ("mixed4=1.5", [{"layer": "mixed4", "weight": 1.5}], ("layers", {"mixed4": 1.0})),
    "channel": ("mixed4:97", {"layer": "mixed4", "index": 97}, ("channel", 97)),
    "class_index": ("207", 207, ("class_index", 207)),
    "octaves": ("1", 1, ("octaves", 1)),
    "octave_scale": ("1.7", 1.7, ("octave_scale", 1.7)),
    "steps": ("1", 1, ("steps", 1)),
    "step_size": ("0.05", 0.05, ("step_size", 0.05)),
    "tile": ("256", 256, ("tile", 256)),
    "seed": ("3", 3, ("seed", 3)),
    "start": ("noise", "noise", ("start", "noise")),
    "precision": ("tf32", "tf32", ("precision", "tf32")),
    "max_pixels": ("40000", 40000, ("max_pixels", 40000)),
    "fit": ("", True, ("fit", True)),  # a switch: the flag alone
}
FLAGS = [arg for name in FIELDS for arg in (flag_of(name), SAMPLES[name][0]) if arg]
FORM = {"presets": ["fast"], **{name: SAMPLES[name][1] for name in FIELDS}}
SURFACES = ("dream", "stylize", "run", "form")


def test_every_field_has_a_sample() -> None:
    assert set(SAMPLES) == set(FIELDS)


@pytest.mark.parametrize("command", ["dream", "stylize", "run"])
@pytest.mark.parametrize("field", FIELDS)
def test_every_field_is_a_flag_with_its_description(command: str, field: str) -> None:
    subparsers = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    actions = {a.dest: a for a in subparsers[command]._actions}
    assert field in actions, f"{command} has no {flag_of(field)}"
    assert flag_of(field) in actions[field].option_strings
    assert DreamParams.model_fields[field].description in (actions[field].help or "")


def test_the_form_has_dropdowns_and_plain_optional_fields() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.flows import pipeline_flow, stylize_flow

    for flow in (stylize_flow, pipeline_flow):
        schema = parameter_schema(flow.fn).model_dump_for_openapi()
        definitions = schema["definitions"]
        dream = definitions["DreamParams"]["properties"]
        assert set(dream) == {"presets", *FIELDS}
        assert "fast" in definitions["Preset"]["enum"]
        assert definitions["Layer"]["enum"][0] == "mixed0"
        for name in FIELDS:
            assert "anyOf" not in dream[name], f"{name} offers a 'None' type in the form"
            assert dream[name]["description"]


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, classifier_weights: Path
) -> dict[str, dict[str, Any]]:
    """The parameters each surface recorded, with every field set."""
    found: dict[str, dict[str, Any]] = {}
    env = {"DREAMCRAWL_WEIGHTS": str(classifier_weights)}
    photo = photo_bytes("chelsea", size=160)

    def fresh_home(name: str) -> tuple[Settings, dict[str, str]]:
        home = tmp_path_factory.mktemp(name)
        local = {
            **env,
            "DREAMCRAWL_HOME": str(home),
            "DREAMCRAWL_DB_URL": "",
            "PREFECT_HOME": str(home / "prefect"),
        }
        return Settings.from_env(local), local

    def row_params(settings: Settings) -> dict[str, Any]:
        with open_catalog(settings).session() as session:
            rows = session.scalars(sa.select(Stylization.params_json)).all()
        assert len(rows) == 1
        return json.loads(rows[0])

    folder = tmp_path_factory.mktemp("dream")
    (folder / "in.jpg").write_bytes(photo)
    out = folder / "out.png"
    result = dreamcrawl("dream", str(folder / "in.jpg"), str(out), "--preset", "fast",
                        *FLAGS, "--json", env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found["dream"] = json.loads(result.stdout)["params"]

    settings, local = fresh_home("stylize")
    add_image(open_catalog(settings), photo)
    result = dreamcrawl("stylize", "--preset", "fast", *FLAGS, env=local)
    assert result.returncode == 0, result.stderr[-2000:]
    found["stylize"] = row_params(settings)

    settings, local = fresh_home("run")
    site = LocalSite()
    with serve(site):
        site.file("/cat.jpg", photo, "image/jpeg")
        site.page("/", '<html><title>cats</title><img src="/cat.jpg" alt="a cat"></html>')
        result = dreamcrawl("run", "--keyword", "cat", "--start-url", site.url("/"),
                            "--allow-private", "--max-images", "1", *FLAGS, env=local)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found["run"] = row_params(settings)

    # The deployment form sends JSON: the flow validates it into the model.
    settings, local = fresh_home("form")
    add_image(open_catalog(settings), photo)
    script = (
        "import json, sys\n"
        "from pipeline.cli import prefect_defaults\n"
        "prefect_defaults()\n"
        "from flows.flows import stylize_flow\n"
        "result = stylize_flow(dream=json.loads(sys.argv[1]))\n"
        "assert result['summary']['dreamed'] == 1, result\n"
    )
    result = dreamcrawl_python(script, json.dumps(FORM), env=local)
    assert result.returncode == 0, result.stderr[-2000:]
    found["form"] = row_params(settings)
    return found


def dreamcrawl_python(script: str, *args: str, env: dict[str, str]) -> Any:
    import os
    import subprocess
    import sys

    from tests.helpers import REPO

    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("field", FIELDS)
def test_every_field_reaches_the_record(
    recorded: dict[str, dict[str, Any]], surface: str, field: str
) -> None:
    key, value = SAMPLES[field][2]
    assert recorded[surface][key] == value
