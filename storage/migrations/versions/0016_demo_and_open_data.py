"""open data: submissions.demo, the performance rollup, disparities, grid cells, refresh state

Revision ID: 0016_demo_and_open_data
Revises: 0015_request_places
Create Date: 2026-12-04 15:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0016_demo_and_open_data"
down_revision: str | Sequence[str] | None = "0015_request_places"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As storage.models.open_data.HISTOGRAM_BUCKETS is today, spelt out: a migration must not change
# when the model does.
_BUCKETS = 48


def _histogram(prefix: str) -> list[sa.Column[int]]:
    return [sa.Column(f"{prefix}_{i}", sa.Integer(), nullable=False) for i in range(_BUCKETS)]


def upgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_submissions_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_submissions_demo", ["demo"], unique=False)
    op.create_table(
        "open_data_rollup",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("ward", sa.String(length=32), nullable=False),
        sa.Column("area_type", sa.String(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("acknowledged", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("closed_within_target", sa.Integer(), nullable=False),
        *_histogram("ack"),
        *_histogram("close"),
        sa.PrimaryKeyConstraint(
            "period",
            "period_start",
            "service_code",
            "ward",
            "area_type",
            name=op.f("pk_open_data_rollup"),
        ),
    )
    op.create_table(
        "open_data_disparity",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("ward", sa.String(length=32), nullable=False),
        sa.Column("informal_count", sa.Integer(), nullable=False),
        sa.Column("formal_count", sa.Integer(), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(
            "period", "period_start", "service_code", "ward", name=op.f("pk_open_data_disparity")
        ),
    )
    op.create_table(
        "open_data_cells",
        sa.Column("cell_row", sa.Integer(), nullable=False),
        sa.Column("cell_col", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cell_row", "cell_col", name=op.f("pk_open_data_cells")),
    )
    op.create_table(
        "open_data_refresh",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_submission_id", sa.Integer(), nullable=False),
        sa.Column("last_change_id", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_data_refresh")),
    )


def downgrade() -> None:
    op.drop_table("open_data_refresh")
    op.drop_table("open_data_cells")
    op.drop_table("open_data_disparity")
    op.drop_table("open_data_rollup")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_demo")
        batch_op.drop_index("ix_submissions_created_at")
        batch_op.drop_column("demo")
