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
    # A plain ADD COLUMN, not a batch: with an expression as its default SQLite's batch mode
    # would copy and drop the table, and the drop cascades (foreign keys are on) to every
    # status change and outbox row of the reports. A constant default needs no copy.
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "submissions",
        sa.Column(
            "demo",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false" if postgresql else "0"),
        ),
    )
    op.create_index("ix_submissions_created_at", "submissions", ["created_at"], unique=False)
    op.create_index("ix_submissions_demo", "submissions", ["demo"], unique=False)
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
    op.drop_index("ix_submissions_demo", table_name="submissions")
    op.drop_index("ix_submissions_created_at", table_name="submissions")
    # SQLite (3.35 and later) drops a column in place, with no copy of the table either.
    op.execute("ALTER TABLE submissions DROP COLUMN demo")
