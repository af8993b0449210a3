"""Run a dreamcrawl Prefect flow from the command line and print its summary.

Without ``PREFECT_API_URL`` Prefect starts a temporary local server for the run (about
10 s the first time, while it migrates its own database; ~1 s later).
"""

from __future__ import annotations

import json
from typing import Any


def run_flow(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Call the flow ``name`` (crawl, stylize or pipeline) with ``parameters``.

    A run that failed on the user's input re-raises that error here (exit code 2 with
    its one line); any other failure raises as it is (exit code 1).
    """
    from flows.flows import crawl_flow, pipeline_flow, stylize_flow

    flow = {"crawl": crawl_flow, "stylize": stylize_flow, "pipeline": pipeline_flow}[name]
    accepted = {k: v for k, v in parameters.items() if v is not None}
    state = flow(**accepted, return_state=True)
    return state.result()


def print_summary(result: dict[str, Any], as_json: bool = False) -> None:
    """The run's counts: a JSON document, or one ``name: value`` line each."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    for name, value in result["summary"].items():
        print(f"{name}: {value}")
