"""submissions.wards and submissions.precision: every ward of the place, and how precise it is

Revision ID: 0005_wards_precision
Revises: 0004_personal_removed
Create Date: 2026-12-04 09:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_wards_precision"
down_revision: str | Sequence[str] | None = "0004_personal_removed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reports stored before keep NULL: their answers hold only the main ward, already in `ward`.
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        # As JsonDocument is today, spelt out: a migration must not change when the model does.
        json_list = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
        batch_op.add_column(sa.Column("wards", json_list, nullable=True))
        batch_op.add_column(sa.Column("precision", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("precision")
        batch_op.drop_column("wards")
