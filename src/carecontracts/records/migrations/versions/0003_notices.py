"""Contract management notices (GC9, SC29) and their steps

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('lever', sa.String(length=20), nullable=False),
    sa.Column('contract', sa.String(length=100), nullable=False),
    sa.Column('about', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('last_on', sa.Date(), nullable=False),
    sa.Column('milestone', sa.Text(), nullable=True),
    sa.Column('milestone_due', sa.Date(), nullable=True),
    sa.Column('percent', sa.String(length=40), nullable=True),
    sa.Column('withheld_from', sa.Date(), nullable=True),
    sa.Column('retain_after_months', sa.Integer(), nullable=True),
    sa.Column('remedied_in', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_contract'), ['contract'], unique=False)
    op.create_table('notice_steps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('on', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notice_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_steps_notice_id'), ['notice_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notice_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_steps_notice_id'))
    op.drop_table('notice_steps')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_contract'))
    op.drop_table('notices')
