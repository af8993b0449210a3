"""Imports only go down: pipeline → flows → crawler → storage; flows and crawler may use
stylize; storage and stylize import neither each other nor anything above them.

An AST walk over every module (lazy imports inside functions included) fails the suite
the moment a module reaches upward, so the direction cannot erode one import at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "flows", "crawler", "storage", "stylize")
# What each package may import from dreamcrawl's own packages (besides itself).
ALLOWED: dict[str, set[str]] = {
    "pipeline": {"flows", "crawler", "storage", "stylize"},
    "flows": {"crawler", "storage", "stylize"},
    "crawler": {"storage", "stylize"},
    "storage": set(),
    "stylize": set(),
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """dreamcrawl packages imported anywhere in ``path``, with the line of each import."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                found.add((top, node.lineno))
    return found


def upward_imports() -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for target, line in sorted(imported_packages(path)):
                if target != package and target not in ALLOWED[package]:
                    problems.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    return problems


def test_no_module_imports_a_layer_above_it() -> None:
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pipeline.cli\n", {"pipeline"}),
        ("def f():\n    from flows.flows import stylize_flow\n", {"flows"}),
        ("from storage import blobs\nimport numpy\n", {"storage"}),
        ("from . import sibling\n", set()),
    ],
)
def test_the_check_sees_every_kind_of_import(tmp_path: Path, source: str, expected: set) -> None:
    module = tmp_path / "m.py"
    module.write_text(source)
    assert {name for name, _ in imported_packages(module)} == expected
