"""submissions.suburb and submissions.place_source: every request placed, or marked unknown

Revision ID: 0015_request_places
Revises: 0014_canned_responses
Create Date: 2026-12-04 15:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_request_places"
down_revision: str | Sequence[str] | None = "0014_canned_responses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before keep NULL in both: `citybot data backfill` places them from their pins
    # or place text (place_source NULL is its work list), in batches, while the bot runs.
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suburb", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("place_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("place_source")
        batch_op.drop_column("suburb")
