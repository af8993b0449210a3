"""``dreamcrawl deploy``: the deployments on Prefect work pools, for several machines.

Where ``dreamcrawl serve`` runs every flow in its own process, ``deploy`` registers the
same deployments (the serve config's scheduled runs plus on-demand ``crawl``,
``stylize`` and ``pipeline``) on two work pools, and exits; Prefect workers started on
other machines run them:

- the *crawl* pool gets the crawls and the pipelines;
- the *dream* pool gets ``stylize``. A pipeline hands its dreams to it (parameter
  ``dream_deployment``, set to ``stylize/stylize``), so a crawl machine never loads
  TensorFlow.

Deployments name their flow by module path (``flows.flows.crawl_flow``), so a worker
needs dreamcrawl installed and nothing else: no shared folder, no code download. Pools
that do not exist yet are created as ``process`` pools.
"""

from __future__ import annotations

from typing import Any

from flows.deployments import ServeConfig, build_deployments

DREAM_DEPLOYMENT = "stylize/stylize"


def pool_of(config: ServeConfig, flow_name: str) -> str:
    """The work pool of a flow's deployments: dreams on the dream pool, the rest on the
    crawl pool."""
    return config.pools["dream" if flow_name == "stylize" else "crawl"]


def deploy(config: ServeConfig) -> list[tuple[str, str]]:
    """Create the pools if needed and every deployment on its pool; return
    (``flow/deployment``, pool) pairs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments.runner import EntrypointType
    from prefect.exceptions import ObjectNotFound

    deployments = build_deployments(
        config,
        pipeline_defaults={"dream_deployment": DREAM_DEPLOYMENT},
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    by_pool: dict[str, list[Any]] = {}
    for deployment in deployments:
        by_pool.setdefault(pool_of(config, deployment.flow_name), []).append(deployment)
    with get_client(sync_client=True) as client:
        for pool in by_pool:
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    created = []
    for pool, group in by_pool.items():
        for deployment in group:
            # What prefect.deploy() does for each, without its image handling, console
            # output and worker listing.
            deployment.apply(work_pool_name=pool)
            created.append((f"{deployment.flow_name}/{deployment.name}", pool))
    return created
