"""supplies orders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supply_orders",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_by_name", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("ship_to", sa.Text(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.Column("notify_error", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.practice_id"]),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_supply_orders_practice_created", "supply_orders", ["practice_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_supply_orders_practice_created", table_name="supply_orders")
    op.drop_table("supply_orders")
