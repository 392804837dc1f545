"""ussd sessions: where each phone is in a USSD dialogue, to answer retries and resume drops

Revision ID: 0023_ussd_sessions
Revises: 0019_pending_replies
Create Date: 2026-12-04 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storage.types


revision: str = '0023_ussd_sessions'
down_revision: str | Sequence[str] | None = '0019_pending_replies'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ussd_sessions',
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=False),
    sa.Column('consumed', sa.Integer(), nullable=False),
    sa.Column('screen', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('updated_at', storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone', name=op.f('pk_ussd_sessions'))
    )


def downgrade() -> None:
    op.drop_table('ussd_sessions')
