"""image labels: the top ImageNet classes of every image, and the view v_labels

``labellings`` records that an image went through a labeller (labelled, too small or
unreadable), ``labels`` its top classes with WordNet id, name and probability. The view
reads ``v_images`` for the image's source and keywords, so one text serves SQLite and
PostgreSQL alike.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

V_LABELS = """
CREATE VIEW v_labels AS
SELECT
  l.id AS label_id,
  l.image_id AS image_id,
  vi.sha256 AS image_sha256,
  l.labeller AS labeller,
  l.rank AS rank,
  l.wnid AS wnid,
  l.name AS name,
  l.score AS score,
  lg.created_at AS labelled_at,
  vi.image_path AS image_path,
  vi.first_url AS first_url,
  vi.first_source AS first_source,
  vi.keywords AS keywords
FROM labels l
JOIN v_images vi ON vi.image_id = l.image_id
LEFT JOIN labellings lg ON lg.image_id = l.image_id AND lg.labeller = l.labeller
"""


def upgrade() -> None:
    op.create_table(
        "labellings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("labeller", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_labellings_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labellings")),
        sa.UniqueConstraint("image_id", "labeller", name=op.f("uq_labellings_image_id_labeller")),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("labeller", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("wnid", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_labels_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint(
            "image_id", "labeller", "rank", name=op.f("uq_labels_image_id_labeller_rank")
        ),
    )
    op.create_index("ix_labels_wnid_image_id", "labels", ["wnid", "image_id"], unique=False)
    op.execute(V_LABELS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_labels")
    op.drop_index("ix_labels_wnid_image_id", table_name="labels")
    op.drop_table("labels")
    op.drop_table("labellings")
