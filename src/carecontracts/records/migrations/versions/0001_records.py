"""The records store: submissions, closes, issued lines, invoices, challenges, events

Revision ID: 0001
Revises: 
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('challenges',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('contract', sa.String(length=100), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('component', sa.String(length=200), nullable=True),
    sa.Column('payer', sa.String(length=100), nullable=True),
    sa.Column('payee', sa.String(length=100), nullable=True),
    sa.Column('activity_ids', sa.Text(), nullable=False),
    sa.Column('amount', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('raised_by', sa.String(length=200), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('settled_month', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_challenges_contract'), ['contract'], unique=False)

    op.create_table('closes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('total', sa.String(length=40), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('sources', sa.Text(), nullable=False),
    sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopened_by', sa.String(length=200), nullable=True),
    sa.Column('reopen_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('month', 'version')
    )
    with op.batch_alter_table('closes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_closes_month'), ['month'], unique=False)

    op.create_table('events',
    sa.Column('sequence', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=400), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('previous_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('sequence'),
    sa.UniqueConstraint('hash')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_kind'), ['kind'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contract', sa.String(length=100), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('amount', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_contract'), ['contract'], unique=False)

    op.create_table('source_texts',
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('content_hash')
    )
    op.create_table('submissions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('files', sa.Text(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=False),
    sa.Column('cost', sa.String(length=40), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=40), nullable=False),
    sa.Column('nil_return', sa.Boolean(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'month', 'version')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_provider_month', ['provider', 'month'], unique=False)

    op.create_table('issued_lines',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('close_id', sa.Integer(), nullable=False),
    sa.Column('scenario', sa.String(length=40), nullable=False),
    sa.Column('contract', sa.String(length=100), nullable=False),
    sa.Column('component', sa.String(length=200), nullable=False),
    sa.Column('payer', sa.String(length=100), nullable=False),
    sa.Column('payee', sa.String(length=100), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('quantity', sa.String(length=40), nullable=True),
    sa.Column('rate', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.String(length=40), nullable=False),
    sa.Column('basis', sa.Text(), nullable=True),
    sa.Column('service', sa.String(length=100), nullable=True),
    sa.Column('currency', sa.String(length=100), nullable=True),
    sa.Column('adjusts', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['close_id'], ['closes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('issued_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issued_lines_close_id'), ['close_id'], unique=False)



def downgrade() -> None:
    op.drop_table('source_texts')
    with op.batch_alter_table('issued_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issued_lines_close_id'))

    op.drop_table('issued_lines')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_provider_month')

    op.drop_table('submissions')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_contract'))

    op.drop_table('invoices')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_kind'))

    op.drop_table('events')
    with op.batch_alter_table('closes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_closes_month'))

    op.drop_table('closes')
    with op.batch_alter_table('challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_challenges_contract'))

    op.drop_table('challenges')
