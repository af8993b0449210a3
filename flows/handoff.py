"""Hand a pipeline's dreams to the dream work pool (``dreamcrawl deploy``).

The pipeline flow runs on a crawl machine; with ``dream_deployment`` set it triggers
that deployment (``stylize/stylize``, on the dream pool) for the images its crawl found
and waits for it, instead of dreaming in its own process. The dream flow run is a
child of the pipeline's run in Prefect, and the catalog rows it writes name it. The
outcomes are read back from the catalog: the only thing both machines share with the
Prefect server (results stay on the machine that computed them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from flows.dreaming import DreamOutcome, DreamStatus
from storage.db import open_catalog
from storage.models import Image, Stylization, StylizationStatus
from storage.settings import Settings


def dream_elsewhere(
    settings: Settings, deployment: str, parameters: dict[str, Any]
) -> list[DreamOutcome]:
    """Run ``deployment`` with ``parameters``, wait for it, and return its outcomes."""
    from prefect.deployments import run_deployment

    if not parameters.get("image_ids"):
        return []
    flow_run = run_deployment(name=deployment, parameters=parameters, timeout=None)
    state = flow_run.state
    if state is None or not state.is_completed():
        name = state.name if state else "unknown"
        raise RuntimeError(f"the dreams ({deployment}, flow run {flow_run.id}) ended {name}")
    return outcomes_of(settings, str(flow_run.id))


# A row's status as a report outcome (rows the dream run left unfinished: skipped).
STATUS = {StylizationStatus.DONE: DreamStatus.DONE, StylizationStatus.FAILED: DreamStatus.FAILED}


def outcomes_of(settings: Settings, flow_run_id: str) -> list[DreamOutcome]:
    """What the dream flow run ``flow_run_id`` recorded, as report outcomes."""
    catalog = open_catalog(settings)
    rows = (
        select(Stylization, Image.sha256)
        .join(Image, Stylization.image_id == Image.id)
        .where(Stylization.prefect_flow_run_id == flow_run_id)
        .order_by(Stylization.id)
    )
    with catalog.read_session() as session:
        found = session.execute(rows).all()
    return [
        DreamOutcome(
            id=row.id,
            preset=row.preset or "",
            status=STATUS.get(row.status, DreamStatus.SKIPPED),
            error=row.error,
            seconds=round(sum(row.octave_timings or []), 3) if row.output_blob_key else None,
            octave_timings=tuple(row.octave_timings or ()),
            device=row.device,
            output=row.output_blob_key,
            image_sha256=sha256,
        )
        for row, sha256 in found
    ]
