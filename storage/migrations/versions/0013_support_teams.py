"""support tickets carry a team, when they last entered the queue, when the present agent took
them, and when the resident was told nobody is free yet

Revision ID: 0013_support_teams
Revises: 0012_area_subscriptions
Create Date: 2026-12-04 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0013_support_teams'
down_revision: str | Sequence[str] | None = '0012_area_subscriptions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('support_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column('queued_at', storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('held_since', storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('unclaimed_told_at', storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f('ix_support_tickets_team'), ['team'], unique=False)
    # Tickets held when this runs: held since their claim.
    op.execute("UPDATE support_tickets SET held_since = claimed_at WHERE state = 'held'")
    op.execute("UPDATE support_tickets SET queued_at = created_at WHERE state = 'waiting'")


def downgrade() -> None:
    with op.batch_alter_table('support_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_support_tickets_team'))
        batch_op.drop_column('unclaimed_told_at')
        batch_op.drop_column('held_since')
        batch_op.drop_column('queued_at')
        batch_op.drop_column('team')
