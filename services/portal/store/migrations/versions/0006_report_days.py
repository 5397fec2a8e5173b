"""the reports' daily roll-up of the ledger, kept by a trigger on transactions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:45:00
"""

import sqlalchemy as sa
from alembic import op

from services.portal.store.report_models import (
    BACKFILL,
    DAY_POSTGRESQL,
    DAY_SQLITE,
    ROLLUP_POSTGRESQL,
    ROLLUP_SQLITE,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_days",
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("location_id", sa.String(length=32), nullable=False),
        sa.Column("plan_code", sa.String(length=8), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "kind", "day", "location_id", "plan_code", name="pk_report_days"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(BACKFILL.format(day=DAY_POSTGRESQL if postgresql else DAY_SQLITE))
    for sql in ROLLUP_POSTGRESQL if postgresql else ROLLUP_SQLITE:
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS transactions_report_days ON transactions")
        op.execute("DROP FUNCTION IF EXISTS transactions_report_days()")
    else:
        op.execute("DROP TRIGGER IF EXISTS transactions_report_days_add")
        op.execute("DROP TRIGGER IF EXISTS transactions_report_days_void")
    op.drop_table("report_days")
