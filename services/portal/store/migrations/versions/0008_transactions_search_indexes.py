"""indexes for the transactions list's filters and search

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 03:10:00

At 820,000 rows for one practice (bench.portal) the list's filters by kind and location
counted their rows by walking the practice's whole ledger (58 ms, more under load), and its
search (``MoneyService._matches``: a union of one query per field) needs an index per field:

* B-tree ``(practice_id, kind, location_id, occurred_at)`` and ``(practice_id, location_id,
  occurred_at)`` for the filters, newest first; ``(practice_id, authorization_code)`` for a
  code.
* On PostgreSQL, trigram GIN indexes (``pg_trgm``) for ``LIKE '%term%'``: the lower-cased
  treatment text, the cardholder's lower-cased last name (which the accounts and applications
  searches use too) and the card number (its last four). ``pg_trgm`` ships with PostgreSQL
  and is a trusted extension (13+), so a database owner may create it; where it cannot be
  created (a managed service without it), the search still works, by reading more rows, and
  the migration says so in a warning rather than failing the deploy. SQLite has no
  equivalent; its databases are the small embedded ones.

A plain ``CREATE INDEX`` locks the table against writes while it builds (seconds at a million
rows); on a larger live database, build them first with ``CREATE INDEX CONCURRENTLY`` under
the same names and this migration finds them (``IF NOT EXISTS``).
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TRIGRAM_INDEXES = {
    "ix_transactions_description_trgm": "transactions USING gin (lower(description) gin_trgm_ops)",
    "ix_cardholders_last_name_trgm": "cardholders USING gin (lower(last_name) gin_trgm_ops)",
    "ix_accounts_number_trgm": "accounts USING gin (number gin_trgm_ops)",
}


def upgrade() -> None:
    op.create_index(
        "ix_transactions_practice_kind_location",
        "transactions",
        ["practice_id", "kind", "location_id", "occurred_at"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_transactions_practice_location",
        "transactions",
        ["practice_id", "location_id", "occurred_at"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_transactions_practice_auth_code",
        "transactions",
        ["practice_id", "authorization_code"],
        if_not_exists=True,
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").first()
    if available is None:
        log.warning("pg_trgm is not available: the transactions search will work without its indexes")
        return
    # In a savepoint: a refused extension, or one installed in a schema off the search path
    # (so that gin_trgm_ops is not found), must not fail the deploy.
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            for name, target in TRIGRAM_INDEXES.items():
                bind.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")
    except sa.exc.DBAPIError as exc:
        log.warning(
            "pg_trgm's indexes could not be created (%s): the transactions search will work without them",
            str(exc.orig).strip().splitlines()[0],
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            bind.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_transactions_practice_auth_code", table_name="transactions")
    op.drop_index("ix_transactions_practice_location", table_name="transactions")
    op.drop_index("ix_transactions_practice_kind_location", table_name="transactions")
