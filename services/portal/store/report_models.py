"""The reports' daily roll-up of the ledger (issue 8), on the portal's one metadata.

``report_days`` holds, per practice, UTC day, location, plan and kind (``charge`` or
``refund``), how many ledger rows and how many cents. The database keeps it, in the
same transaction as each ledger row: an ``AFTER INSERT`` trigger on ``transactions``
adds a purchase or a refund to its bucket, and a void takes its purchase back out of
the purchase's bucket (so ``charge`` buckets hold financed volume: purchases never
voided). The ledger itself is append-only, so nothing else can change a bucket.
Reports over a year read a few thousand rows instead of every purchase.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import DDL, BigInteger, Date, Integer, PrimaryKeyConstraint, String, event
from sqlalchemy.orm import Mapped, mapped_column

from services.portal.store.models import Base


class ReportDay(Base):
    __tablename__ = "report_days"
    __table_args__ = (
        PrimaryKeyConstraint("practice_id", "kind", "day", "location_id", "plan_code", name="pk_report_days"),
    )

    practice_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    location_id: Mapped[str] = mapped_column(String(32))  # '' when the row names none
    plan_code: Mapped[str] = mapped_column(String(8))  # '' when the row names none
    items: Mapped[int] = mapped_column(Integer)
    cents: Mapped[int] = mapped_column(BigInteger)


ROLLUP_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS transactions_report_days_add AFTER INSERT ON transactions "
    "WHEN NEW.practice_id IS NOT NULL AND NEW.kind IN ('charge', 'refund') BEGIN "
    "INSERT INTO report_days (practice_id, kind, day, location_id, plan_code, items, cents) "
    "VALUES (NEW.practice_id, NEW.kind, substr(NEW.occurred_at, 1, 10), coalesce(NEW.location_id, ''), "
    "coalesce(NEW.plan_code, ''), 1, NEW.amount_cents) "
    "ON CONFLICT (practice_id, kind, day, location_id, plan_code) "
    "DO UPDATE SET items = items + 1, cents = cents + excluded.cents; END",
    "CREATE TRIGGER IF NOT EXISTS transactions_report_days_void AFTER INSERT ON transactions "
    "WHEN NEW.kind = 'void' BEGIN "
    "UPDATE report_days SET items = items - 1, cents = cents - "
    "(SELECT c.amount_cents FROM transactions c WHERE c.transaction_id = NEW.related_id) "
    "WHERE (practice_id, kind, day, location_id, plan_code) = "
    "(SELECT c.practice_id, 'charge', substr(c.occurred_at, 1, 10), coalesce(c.location_id, ''), "
    "coalesce(c.plan_code, '') FROM transactions c "
    "WHERE c.transaction_id = NEW.related_id AND c.kind = 'charge'); END",
)
ROLLUP_POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION transactions_report_days() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF NEW.practice_id IS NOT NULL AND NEW.kind IN ('charge', 'refund') THEN "
    "INSERT INTO report_days (practice_id, kind, day, location_id, plan_code, items, cents) "
    "VALUES (NEW.practice_id, NEW.kind, (NEW.occurred_at AT TIME ZONE 'UTC')::date, "
    "coalesce(NEW.location_id, ''), coalesce(NEW.plan_code, ''), 1, NEW.amount_cents) "
    "ON CONFLICT (practice_id, kind, day, location_id, plan_code) "
    "DO UPDATE SET items = report_days.items + 1, cents = report_days.cents + EXCLUDED.cents; "
    "ELSIF NEW.kind = 'void' THEN "
    "UPDATE report_days r SET items = r.items - 1, cents = r.cents - c.amount_cents "
    "FROM transactions c WHERE c.transaction_id = NEW.related_id AND c.kind = 'charge' "
    "AND r.practice_id = c.practice_id AND r.kind = 'charge' "
    "AND r.day = (c.occurred_at AT TIME ZONE 'UTC')::date "
    "AND r.location_id = coalesce(c.location_id, '') AND r.plan_code = coalesce(c.plan_code, ''); "
    "END IF; RETURN NEW; END $$",
    "CREATE TRIGGER transactions_report_days AFTER INSERT ON transactions "
    "FOR EACH ROW EXECUTE FUNCTION transactions_report_days()",
)
# What the migration runs to fill the table from an existing ledger (the same rules).
BACKFILL = (
    "INSERT INTO report_days (practice_id, kind, day, location_id, plan_code, items, cents) "
    "SELECT t.practice_id, t.kind, {day}, coalesce(t.location_id, ''), coalesce(t.plan_code, ''), "
    "count(*), sum(t.amount_cents) FROM transactions t "
    "WHERE t.practice_id IS NOT NULL AND t.kind IN ('charge', 'refund') AND NOT EXISTS "
    "(SELECT 1 FROM transactions v WHERE v.kind = 'void' AND v.related_id = t.transaction_id) "
    "GROUP BY t.practice_id, t.kind, {day}, coalesce(t.location_id, ''), coalesce(t.plan_code, '')"
)
DAY_SQLITE = "substr(t.occurred_at, 1, 10)"
DAY_POSTGRESQL = "(t.occurred_at AT TIME ZONE 'UTC')::date"

# After every table exists (the triggers on transactions write to report_days).
for _sql in ROLLUP_SQLITE:
    event.listen(Base.metadata, "after_create", DDL(_sql).execute_if(dialect="sqlite"))
for _sql in ROLLUP_POSTGRESQL:
    event.listen(Base.metadata, "after_create", DDL(_sql).execute_if(dialect="postgresql"))
