"""Deployments for ``dreamcrawl serve``: scheduled keyword crawls and on-demand flows.

The serve config is TOML or YAML::

    # dreamcrawl.toml
    [[crawl]]                       # one table per scheduled crawl
    name = "cats-nightly"
    cron = "0 3 * * *"              # standard 5-field cron, in the timezone below
    timezone = "UTC"                # optional
    keywords = ["cat", "kitten"]
    start_urls = ["https://example.org/gallery/"]
    max_images = 50                 # any crawl_flow parameter

    [[pipeline]]                    # optional: scheduled crawl-then-dream runs
    name = "space-weekly"
    cron = "0 4 * * 1"
    keywords = ["space"]
    sources = ["commons"]
    presets = ["classic"]

    [on_demand]                     # optional: defaults for the UI's on-demand runs
    presets = ["fast"]
    steps = 8                       # any dream parameter (dreamcrawl dream --help)

    [pools]                         # `dreamcrawl deploy` only (flows/pools.py)
    crawl = "crawl"                 # work pool of crawls and pipelines
    dream = "dream"                 # work pool of the dreams (GPU machines)

Dream parameters (``presets``, ``layers``, ``steps``…) may be written flat, as above, or
as a ``dream`` table; either way they become the flows' typed ``dream`` parameter and
are checked here, so a bad value fails ``serve --check``, not a run at 3 a.m.

On-demand deployments ``crawl``, ``stylize`` and ``pipeline`` are always served, so an
operator can trigger any flow from the Prefect UI with edited parameters.
"""

from __future__ import annotations

import inspect
import logging
import tomllib
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from storage.errors import UserError

SCHEDULED_KINDS = ("crawl", "pipeline")
SCHEDULE_KEYS = {"name", "cron", "timezone", "paused", "description"}


@dataclass
class ScheduledRun:
    kind: str  # crawl | pipeline
    name: str
    cron: str
    parameters: dict[str, Any]
    timezone: str | None = None
    paused: bool = False
    description: str | None = None


@dataclass
class ServeConfig:
    scheduled: list[ScheduledRun] = field(default_factory=list)
    on_demand: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, str] = field(default_factory=lambda: {"crawl": "crawl", "dream": "dream"})


def _flow_for(kind: str) -> Any:
    from flows.flows import crawl_flow, pipeline_flow, stylize_flow

    return {"crawl": crawl_flow, "pipeline": pipeline_flow, "stylize": stylize_flow}[kind]


def _check_cron(where: str, cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise UserError(
            f"{where}: invalid cron '{cron}'; e.g. '0 3 * * *' (min hour dom mon dow)"
        ) from None


def _check_timezone(where: str, timezone: Any) -> None:
    """The same IANA names Prefect's scheduler accepts; checked here, not when serving."""
    if timezone is None:
        return
    try:
        zoneinfo.ZoneInfo(str(timezone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"{where}: unknown timezone '{timezone}'; use an IANA name such as "
            "'UTC' or 'Europe/Paris'"
        ) from None
    from prefect.client.schemas.schedules import CronSchedule

    try:  # Prefect's own list can differ from the system's tzdata.
        CronSchedule(cron="0 0 * * *", timezone=str(timezone))
    except ValueError:
        raise UserError(f"{where}: timezone '{timezone}' is not accepted by Prefect") from None


def _check_schedule_keys(where: str, entry: dict[str, Any]) -> None:
    if not isinstance(entry.get("paused", False), bool):
        raise UserError(f"{where}: paused must be true or false, not {entry['paused']!r}")
    if not isinstance(entry.get("description", ""), str):
        raise UserError(f"{where}: description must be a string")
    _check_timezone(where, entry.get("timezone"))


@contextmanager
def _quiet_prefect_flows() -> Iterator[None]:
    """Flow.validate_parameters logs each failure; the one-line UserError says it instead."""
    logger = logging.getLogger("prefect.flows")
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def _fold_dream(where: str, kind: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Gather flat dream parameters into the flows' ``dream`` object, validated."""
    from stylize.errors import StylizeError
    from stylize.params import DreamParams

    if "dream" not in inspect.signature(_flow_for(kind).fn).parameters:
        return parameters
    nested = parameters.get("dream") or {}
    if not isinstance(nested, dict):
        raise UserError(f"{where}: 'dream' must be a table of dream parameters")
    flat = {k: v for k, v in parameters.items() if k in DreamParams.model_fields}
    values = {**nested, **flat}
    if not values:
        return parameters
    try:
        dream = DreamParams.parse(**values)
        dream.configs()
    except StylizeError as exc:
        raise UserError(f"{where}: {exc}") from None
    rest = {k: v for k, v in parameters.items() if k not in flat and k != "dream"}
    return {**rest, "dream": dream.model_dump(mode="json", exclude_defaults=True)}


def _check_parameters(where: str, kind: str, parameters: dict[str, Any]) -> None:
    accepted = set(inspect.signature(_flow_for(kind).fn).parameters)
    if "dream" in accepted:
        from stylize.params import DreamParams

        accepted |= set(DreamParams.model_fields)
    unknown = sorted(set(parameters) - accepted)
    if unknown:
        raise UserError(
            f"{where}: unknown parameter '{unknown[0]}'; accepted: {', '.join(sorted(accepted))}"
        )
    if kind in SCHEDULED_KINDS and not parameters.get("keywords"):
        raise UserError(f'{where}: a scheduled {kind} needs keywords, e.g. keywords = ["cat"]')


def _check_types(where: str, kind: str, parameters: dict[str, Any]) -> None:
    """The same pydantic check Prefect runs when a run starts, done while checking."""
    from prefect.exceptions import ParameterTypeError

    with _quiet_prefect_flows():
        try:
            _flow_for(kind).validate_parameters(parameters)
        except ParameterTypeError as exc:
            problems = [line.strip(" -") for line in str(exc).splitlines()[1:] if line.strip()]
            raise UserError(f"{where}: invalid parameter {problems[0]}") from None


def parse_config(data: dict[str, Any], origin: str = "config") -> ServeConfig:
    """Validate a parsed config mapping; every mistake is a one-line :class:`UserError`."""
    if not isinstance(data, dict):
        raise UserError(f"{origin}: expected tables [[crawl]], [[pipeline]], [on_demand]")
    unknown = sorted(set(data) - {*SCHEDULED_KINDS, "on_demand", "pools"})
    if unknown:
        raise UserError(
            f"{origin}: unknown section '{unknown[0]}'; accepted: crawl, pipeline, on_demand, pools"
        )
    config = ServeConfig()
    names: set[str] = set()
    for kind in SCHEDULED_KINDS:
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise UserError(f"{origin}: '{kind}' must be a list of tables ([[{kind}]])")
        for index, entry in enumerate(entries):
            where = f"{origin}: {kind}[{index}]"
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("cron"):
                raise UserError(f"{where}: needs at least name and cron")
            name = str(entry["name"])
            if name in names or name in ("crawl", "stylize", "pipeline"):
                raise UserError(f"{where}: deployment name '{name}' is already used")
            names.add(name)
            _check_cron(where, str(entry["cron"]))
            _check_schedule_keys(where, entry)
            parameters = {k: v for k, v in entry.items() if k not in SCHEDULE_KEYS}
            _check_parameters(where, kind, parameters)
            parameters = _fold_dream(where, kind, parameters)
            _check_types(where, kind, parameters)
            config.scheduled.append(
                ScheduledRun(
                    kind=kind,
                    name=name,
                    cron=str(entry["cron"]),
                    parameters=parameters,
                    timezone=entry.get("timezone"),
                    paused=bool(entry.get("paused", False)),
                    description=entry.get("description"),
                )
            )
    on_demand = data.get("on_demand", {})
    if not isinstance(on_demand, dict):
        raise UserError(f"{origin}: [on_demand] must be a table of stylize parameters")
    _check_parameters(f"{origin}: on_demand", "stylize", on_demand)
    config.on_demand = _fold_dream(f"{origin}: on_demand", "stylize", on_demand)
    _check_types(f"{origin}: on_demand", "stylize", config.on_demand)
    pools = data.get("pools", {})
    if not isinstance(pools, dict) or set(pools) - {"crawl", "dream"}:
        raise UserError(f'{origin}: [pools] takes crawl = "POOL" and dream = "POOL"')
    config.pools.update({k: str(v) for k, v in pools.items()})
    return config


def load_config(path: Path | str | None) -> ServeConfig:
    """Read a TOML or YAML serve config (None: only the on-demand deployments)."""
    if path is None:
        return ServeConfig()
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read serve config {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise UserError(f"serve config {path} is not valid TOML/YAML: {first}") from None
    return parse_config(data, origin=str(path))


def build_deployments(
    config: ServeConfig, *, pipeline_defaults: dict[str, Any] | None = None, **options: Any
) -> list[Any]:
    """Prefect RunnerDeployments for every scheduled run plus the on-demand flows.

    ``pipeline_defaults`` are added to every pipeline's parameters (unless given), and
    ``options`` to every ``to_deployment`` call (``dreamcrawl deploy`` uses both).
    """
    from prefect.schedules import Schedule

    def parameters_of(kind: str, given: dict[str, Any]) -> dict[str, Any]:
        extra = pipeline_defaults if kind == "pipeline" and pipeline_defaults else {}
        return {**extra, **given}

    deployments = []
    for run in config.scheduled:
        schedule = Schedule(cron=run.cron, timezone=run.timezone or "UTC")
        deployments.append(
            _flow_for(run.kind).to_deployment(
                name=run.name,
                schedules=[schedule],
                parameters=parameters_of(run.kind, run.parameters),
                paused=run.paused,
                description=run.description or f"scheduled {run.kind}: {run.cron}",
                tags=["dreamcrawl", "scheduled", run.kind],
                **options,
            )
        )
    for kind in ("crawl", "stylize", "pipeline"):
        parameters = config.on_demand if kind == "stylize" else {}
        deployments.append(
            _flow_for(kind).to_deployment(
                name=kind,
                parameters=parameters_of(kind, parameters),
                description=f"on-demand {kind}: trigger it from the UI with your parameters",
                tags=["dreamcrawl", "on-demand", kind],
                **options,
            )
        )
    return deployments


def serve(config: ServeConfig, limit: int | None = None) -> None:
    """Serve every deployment until interrupted (runs execute in this process's runner)."""
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(config), limit=limit)
