"""lease holders: who claimed a dream, and v_stylized's held_by / held_until

``stylizations.lease_holder`` records the worker (``host:pid``) that claimed the row
last. ``v_stylized`` gains two columns at its end, filled only while the row is
``running``: ``held_by`` (that worker) and ``held_until`` (when its lease runs out, after
which any worker may take the row). The view's other columns are those of 0002.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_V0002 = importlib.import_module("storage.migrations.versions.0002_analyst_views")

_LAST = "  st.prefect_flow_run_id AS prefect_flow_run_id\n"
_HELD = (
    "  st.prefect_flow_run_id AS prefect_flow_run_id,\n"
    "  CASE WHEN st.status = 'running' THEN st.lease_holder END AS held_by,\n"
    "  CASE WHEN st.status = 'running' THEN st.lease_expires_at END AS held_until\n"
)


def _views(dialect: str) -> tuple[str, str]:
    """(v_stylized as 0002 made it, v_stylized with the holder columns)."""
    old = _V0002.PG_V_STYLIZED if dialect == "postgresql" else _V0002.SQLITE_V_STYLIZED
    assert old.count(_LAST) == 1
    return old, old.replace(_LAST, _HELD)


def _recreate(stylized: str) -> None:
    # v_preset_timings reads v_stylized: drop it first, put it back after.
    op.execute("DROP VIEW IF EXISTS v_preset_timings")
    op.execute("DROP VIEW IF EXISTS v_stylized")
    op.execute(stylized)
    op.execute(_V0002.V_PRESET_TIMINGS)


def upgrade() -> None:
    op.add_column("stylizations", sa.Column("lease_holder", sa.String(length=255)))
    _recreate(_views(op.get_bind().dialect.name)[1])


def downgrade() -> None:
    old, _new = _views(op.get_bind().dialect.name)
    op.execute("DROP VIEW IF EXISTS v_preset_timings")
    op.execute("DROP VIEW IF EXISTS v_stylized")
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy of the table would trip over
    # the other views that read it.
    op.drop_column("stylizations", "lease_holder")
    op.execute(old)
    op.execute(_V0002.V_PRESET_TIMINGS)
