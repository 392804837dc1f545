"""aggregate answers: optional, counted-only answers (gender, disability) kept apart from reports

Revision ID: 0024_transport_equity
Revises: 0019_pending_replies
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0024_transport_equity'
down_revision: str | Sequence[str] | None = '0023_ussd_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('aggregate_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('form_id', sa.String(length=64), nullable=False),
    sa.Column('step_id', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('special', sa.Boolean(), nullable=False),
    sa.Column('created_at', storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_aggregate_answers_resident_id_residents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_aggregate_answers_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aggregate_answers'))
    )
    op.create_index('ix_aggregate_answers_form_step', 'aggregate_answers', ['form_id', 'step_id'], unique=False)
    op.create_index(op.f('ix_aggregate_answers_resident_id'), 'aggregate_answers', ['resident_id'], unique=False)
    op.create_index(op.f('ix_aggregate_answers_submission_id'), 'aggregate_answers', ['submission_id'], unique=False)
    op.create_index('ux_aggregate_answers_submission_step', 'aggregate_answers', ['submission_id', 'step_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_aggregate_answers_submission_step', table_name='aggregate_answers')
    op.drop_index(op.f('ix_aggregate_answers_submission_id'), table_name='aggregate_answers')
    op.drop_index(op.f('ix_aggregate_answers_resident_id'), table_name='aggregate_answers')
    op.drop_index('ix_aggregate_answers_form_step', table_name='aggregate_answers')
    op.drop_table('aggregate_answers')
