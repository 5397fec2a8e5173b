"""the dashboard's counts without counting: practice_account_counts, and applications by status
from an index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 03:40:00

The dashboard showed a large practice's linked accounts by counting its 94,000
``practice_accounts`` rows (27 ms) and its last 30 days' applications by status through the
``(practice_id, submitted_at)`` index plus the table (10 ms), on every view (bench.portal).
``practice_account_counts`` is kept by triggers in the transaction of each link, filled here
from the existing links; the applications index gains ``status`` so the count reads the index
alone. It replaces the two-column index, which it covers.
"""

import sqlalchemy as sa
from alembic import op

from services.portal.store.models import (
    ACCOUNT_COUNT_BACKFILL,
    ACCOUNT_COUNT_POSTGRESQL,
    ACCOUNT_COUNT_SQLITE,
)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "practice_account_counts",
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("practice_id"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # No link may land between the backfill and the trigger.
        op.execute("LOCK TABLE practice_accounts IN SHARE ROW EXCLUSIVE MODE")
    op.execute(ACCOUNT_COUNT_BACKFILL)
    for sql in ACCOUNT_COUNT_POSTGRESQL if postgresql else ACCOUNT_COUNT_SQLITE:
        op.execute(sql)
    op.create_index(
        "ix_applications_practice_submitted_status",
        "applications",
        ["practice_id", "submitted_at", "status"],
        if_not_exists=True,
    )
    op.drop_index("ix_applications_practice_submitted", table_name="applications")


def downgrade() -> None:
    op.create_index("ix_applications_practice_submitted", "applications", ["practice_id", "submitted_at"])
    op.drop_index("ix_applications_practice_submitted_status", table_name="applications")
    if op.get_bind().dialect.name == "postgresql":
        for name in ("practice_accounts_count_add", "practice_accounts_count_remove"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON practice_accounts")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        op.execute("DROP TRIGGER IF EXISTS practice_accounts_count_add")
        op.execute("DROP TRIGGER IF EXISTS practice_accounts_count_remove")
    op.drop_table("practice_account_counts")
