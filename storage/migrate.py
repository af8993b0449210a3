"""Alembic, driven from code: no alembic.ini to find, the engine passed in directly.

``dreamcrawl db upgrade`` and the automatic upgrade on first use both come here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from storage.errors import UserError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at our migrations (and at ``engine`` if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
        config.attributes["engine"] = engine
    return config


@dataclass(frozen=True)
class Revision:
    """One migration, as ``dreamcrawl db history`` lists it."""

    revision: str
    down_revision: str | None
    doc: str


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def history() -> list[Revision]:
    """Every migration, newest first."""
    return [
        Revision(rev.revision, rev.down_revision, rev.doc or "")  # type: ignore[arg-type]
        for rev in _scripts().walk_revisions()
    ]


def downgrade_target(engine: Engine, target: str) -> str | None:
    """The revision ``target`` (an id, "-N" or "base") names from where the catalog is.

    None means base: the empty database. Refuses what Alembic would refuse with a
    traceback: an empty catalog, an unknown revision, a step past the first migration.
    """
    current = current_revision(engine)
    if current is None:
        raise UserError("the catalog has no schema yet: nothing to downgrade")
    by_id = {rev.revision: rev for rev in history()}
    if target == "base":
        return None
    steps = re.fullmatch(r"-(\d+)", target)
    if steps:
        revision: str | None = current
        for _ in range(int(steps.group(1))):
            if revision is None:
                raise UserError(f"cannot go {target} from {current}: only base lies below")
            revision = by_id[revision].down_revision
        return revision
    if target not in by_id:
        raise UserError(
            f"unknown revision '{target}'; accepted: -N, base, {', '.join(sorted(by_id))}"
        )
    below = {None}
    revision = current
    while revision is not None:
        revision = by_id[revision].down_revision
        below.add(revision)
    if target not in below:
        raise UserError(f"revision {target} is not below the catalog's {current}")
    return target


def head_revision() -> str:
    """The newest migration this code knows."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` ("base" for an empty database)."""
    command.downgrade(alembic_config(engine), revision)
