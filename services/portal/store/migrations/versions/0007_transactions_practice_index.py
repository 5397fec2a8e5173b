"""an index for the practice's transactions list, newest first

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 16:30:00

The transactions page and ``GET /api/v1/transactions`` list one practice's ledger rows by
``occurred_at`` descending, 25 at a time; without an index on ``practice_id`` every page read
the whole table and sorted it (5 s for a practice with 820,000 of 1,000,000 rows, bench.portal).
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transactions_practice_occurred", "transactions", ["practice_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_transactions_practice_occurred", table_name="transactions")
