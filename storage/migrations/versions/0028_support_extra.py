"""support tickets remember the expected wait the resident was told, to tell them again when
it grows

Tickets already waiting when this runs were told a wait nobody recorded: they stay NULL and are
not told again (telling them "longer now" against an unknown figure could be untrue).

Revision ID: 0028_support_extra
Revises: 0027_partitioned_deliveries
Create Date: 2026-12-05 01:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_support_extra"
down_revision: str | Sequence[str] | None = "0027_partitioned_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("support_tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("told_wait_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("support_tickets", schema=None) as batch_op:
        batch_op.drop_column("told_wait_minutes")
