"""The accepting Send's request id and traceparent on each message, for the worker's logs.

Revision ID: 0002_message_trace
Revises: 0001_notify_outbox
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_message_trace"
down_revision = "0001_notify_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("traceparent", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("traceparent")
        batch_op.drop_column("request_id")
