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


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The triggers as this revision made them (models.py holds the current ones for create_all):
# a migration must not change when the models do.
ACCOUNT_COUNT_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS practice_accounts_count_add AFTER INSERT ON practice_accounts BEGIN "
    "INSERT INTO practice_account_counts (practice_id, accounts) VALUES (NEW.practice_id, 1) "
    "ON CONFLICT (practice_id) DO UPDATE SET accounts = accounts + 1; END",
    "CREATE TRIGGER IF NOT EXISTS practice_accounts_count_remove AFTER DELETE ON practice_accounts BEGIN "
    "UPDATE practice_account_counts SET accounts = accounts - 1 WHERE practice_id = OLD.practice_id; END",
)
ACCOUNT_COUNT_POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION practice_accounts_count_add() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN INSERT INTO practice_account_counts (practice_id, accounts) "
    "SELECT practice_id, count(*) FROM added GROUP BY practice_id "
    "ON CONFLICT (practice_id) "
    "DO UPDATE SET accounts = practice_account_counts.accounts + EXCLUDED.accounts; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION practice_accounts_count_remove() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE practice_account_counts c SET accounts = c.accounts - r.n "
    "FROM (SELECT practice_id, count(*) AS n FROM removed GROUP BY practice_id) r "
    "WHERE c.practice_id = r.practice_id; RETURN NULL; END $$",
    "CREATE TRIGGER practice_accounts_count_add AFTER INSERT ON practice_accounts "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION practice_accounts_count_add()",
    "CREATE TRIGGER practice_accounts_count_remove AFTER DELETE ON practice_accounts "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION practice_accounts_count_remove()",
)
ACCOUNT_COUNT_BACKFILL = (
    "INSERT INTO practice_account_counts (practice_id, accounts) "
    "SELECT practice_id, count(*) FROM practice_accounts GROUP BY practice_id"
)


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
