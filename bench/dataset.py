"""The benchmarks' portal data set, generated inside PostgreSQL (``INSERT … SELECT generate_series``).

One generator for ``bench.reports`` (issue 8) and ``bench.portal`` (issue 7):

- one large practice (:data:`PRACTICE`, 4 locations) and :data:`OTHERS` smaller ones (one location
  each), every practice offering every plan;
- ``accounts`` cardholders and accounts (default: one per 10 transactions); 9 in 10 opened by the
  large practice, the rest spread over the others; each account linked (``practice_accounts``) to
  the practice that opened it and to any practice that transacted with it;
- ``transactions`` ledger rows, about 10 per account, over the 400 days before :data:`NOW`:
  87 % charges, 7 % refunds (half of a charge on the same account, days after it), 1 % voids (of
  a charge on the same account, an hour after it), 4 % payments and 1 % interest (account level,
  no practice). One row in 20 is at another practice than the account's own (the large practice
  has ~86 % of the rows). Every refund or void names a charge of the same account, practice,
  location and plan, and no charge is reversed twice;
- each account's balance is its ledger's sum (the invariant ``services/portal/ledger.py`` checks
  before every money action commits) and its limit leaves at least $14,000 of credit;
- a promotional balance for each promotional charge of the last 180 days, less its refund (none
  for a voided one);
- applications (one per 20 transactions) and 400 daily deposits of the large practice.

The ledger rows are inserted with the roll-up trigger of migration 0006 disabled (it would fire
once per row), then ``report_days`` is back-filled with the migration's own SQL
(:data:`services.portal.store.report_models.BACKFILL`) and the trigger enabled again, all in one
transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from services.portal.store.report_models import BACKFILL, DAY_POSTGRESQL, ROLLUP_POSTGRESQL

NOW = datetime(2027, 1, 15, 12, tzinfo=UTC)
PRACTICE = "bench-large-practice"
OTHERS = 19
PLANS = ("DI6", "DI12", "DI18", "DI24", "RA24", "RA36", "RA48", "RA60", "STD")
# The trigger migration 0006 puts on transactions (its CREATE TRIGGER is ROLLUP_POSTGRESQL[1]).
ROLLUP_TRIGGER = "transactions_report_days"
assert f"CREATE TRIGGER {ROLLUP_TRIGGER} " in ROLLUP_POSTGRESQL[1]

# Row i of the ledger is on account 1 + i % :a; rows i and i - :a share the account. The kind's
# class c(i) = (37 i + 13 (i / :a)) mod 100 gives c(i - :a) = c(i) - 13 when :a is a multiple of
# 100, so a refund or void (c in 87..94) of row i reverses row s = i - :a, a charge (c in 74..81).
_KIND = (
    "CASE WHEN c < 87 THEN 'charge' WHEN c < 94 THEN (CASE WHEN i <= :a THEN 'charge' ELSE 'refund' END) "
    "WHEN c = 94 THEN (CASE WHEN i <= :a THEN 'charge' ELSE 'void' END) "
    "WHEN c < 99 THEN 'payment' ELSE 'interest' END"
)
_HOME = "(CASE WHEN (1 + i % :a) % 10 <> 0 THEN 0 ELSE 1 + ((1 + i % :a) / 10) % :others END)"
_FOREIGN = f"(CASE WHEN {_HOME} = 0 THEN 1 + (1 + i % :a) % :others ELSE 0 END)"


def row_id(prefix: str, index: int) -> str:
    """Row ``index``'s id in the portal's shape (``acc_`` + 16 hex digits), as the SQL below makes
    it: ``'acc_' || substr(md5('acc' || i), 1, 16)`` (accounts are 1 … ``accounts``)."""
    return f"{prefix}_{hashlib.md5(f'{prefix}{index}'.encode(), usedforsecurity=False).hexdigest()[:16]}"


def location_id(k: int) -> str:
    """The large practice's locations are 1 … 4; other practice k's is 100 + k."""
    return f"loc_{k:016x}"


_TS = "CAST(:now AS timestamptz) - ((({x}) * 104729) % (400 * 86400)) * interval '1 second'"

STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "practices",
        "INSERT INTO practices (practice_id, name, created_at, refund_step_up_cents) "
        "SELECT :p, 'Bench Dental Group', now(), 50000 UNION ALL "
        "SELECT 'bench-other-' || k, 'Other Dental ' || k, now(), 50000 FROM generate_series(1, :others) k",
    ),
    (
        "locations",
        "INSERT INTO locations (location_id, practice_id, name, street, city, state, zip, phone, created_at) "
        "SELECT 'loc_' || lpad(to_hex(k), 16, '0'), :p, 'Office ' || k, '1 Main St', 'Portland', "
        "'OR', '97214', '(503) 555-0100', now() FROM generate_series(1, 4) k UNION ALL "
        "SELECT 'loc_' || lpad(to_hex(100 + k), 16, '0'), 'bench-other-' || k, 'Other office ' || k, "
        "'2 Elm St', 'Salem', 'OR', '97301', '(503) 555-0199', now() FROM generate_series(1, :others) k",
    ),
    (
        "practice_plans",
        "INSERT INTO practice_plans (practice_id, plan_code, added_at, added_by) "
        "SELECT p.practice_id, plan, now(), 'bench' FROM practices p, unnest(CAST(:plans AS text[])) plan",
    ),
    (
        "cardholders",
        "INSERT INTO cardholders (cardholder_id, first_name, last_name, date_of_birth, street, city, state, "  # noqa: S608
        "zip, email, phone, created_at) SELECT 'chd_' || substr(md5('chd' || i), 1, 16), "
        "(ARRAY['Ana','Ben','Carla','Dev','Elena','Frank','Grace','Hiro','Iris','Jon','Kira','Luis',"
        "'Maya','Nico','Olga','Pat','Quinn','Rosa','Sam','Tess'])[1 + i % 20], "
        "(ARRAY['Smith','Johnson','Williams','Brown','Jones','Garcia','Miller','Davis','Rodriguez',"
        "'Martinez','Hernandez','Lopez','Gonzalez','Wilson','Anderson','Thomas','Taylor','Moore',"
        "'Jackson','Martin','Lee','Perez','Thompson','White','Harris','Sanchez','Clark','Ramirez',"
        "'Lewis','Robinson','Walker','Young','Allen','King','Wright','Scott','Torres','Nguyen','Hill',"
        "'Flores'])[1 + (i * 7) % 40], DATE '1940-01-01' + (i * 37) % 25000, i || ' Oak Ave', "
        "'Portland', 'OR', lpad((97000 + i % 300)::text, 5, '0'), 'holder' || i || '@example.test', "
        "'(503) 555-' || lpad((i % 10000)::text, 4, '0'), now() FROM generate_series(1, :a) i",
    ),
    (
        "accounts",
        "INSERT INTO accounts (account_id, number, cardholder_id, status, credit_limit_cents, "
        "balance_cents, apr, opened_at, opened_by_practice_id, accrued_interest) "
        "SELECT 'acc_' || substr(md5('acc' || i), 1, 16), '6' || lpad(i::text, 15, '0'), "
        "'chd_' || substr(md5('chd' || i), 1, 16), 'active', 0, 0, 26.99, "
        "CAST(:now AS timestamptz) - interval '400 days' - (i % 365) * interval '1 day', "
        "CASE WHEN i % 10 <> 0 THEN :p ELSE 'bench-other-' || (1 + (i / 10) % :others) END, 0 "
        "FROM generate_series(1, :a) i",
    ),
    (
        "transactions",
        "INSERT INTO transactions"  # noqa: S608 - constants only, the values are bound
        " (transaction_id, account_id, practice_id, location_id, kind, "
        "amount_cents, plan_code, description, authorization_code, occurred_at, created_at, related_id, "
        "treatment_date, disclosure, created_by) "
        "SELECT 'txn_' || substr(md5('txn' || i), 1, 16), "
        "'acc_' || substr(md5('acc' || (1 + i % :a)), 1, 16), "
        "CASE WHEN pn IS NULL THEN NULL WHEN pn = 0 THEN :p ELSE 'bench-other-' || pn END, "
        "CASE WHEN pn IS NULL THEN NULL WHEN pn = 0 THEN 'loc_' || lpad(to_hex(1 + s % 4), 16, '0') "
        "     ELSE 'loc_' || lpad(to_hex(100 + pn), 16, '0') END, kind, "
        "CASE kind WHEN 'charge' THEN 20000 + (s * 7919) % 480000 "
        "     WHEN 'void' THEN 20000 + (s * 7919) % 480000 "
        "     WHEN 'refund' THEN (20000 + (s * 7919) % 480000) / 2 "
        "     WHEN 'payment' THEN 5000 + (i * 7919) % 45000 "
        "     ELSE 300 + (i * 31) % 5000 END, "
        "CASE WHEN pn IS NULL THEN NULL ELSE (CAST(:plans AS text[]))[1 + s % 9] END, "
        "CASE kind WHEN 'charge' THEN (ARRAY['Crown','Cleaning','Implant','Aligners','Root canal',"
        "     'Whitening','Exam','Fillings','Bridge','Veneers'])[1 + s % 10] "
        "     WHEN 'refund' THEN 'Refund' WHEN 'void' THEN 'Void' WHEN 'payment' THEN 'Payment' "
        "     ELSE 'Interest charge' END, "
        "CASE WHEN kind = 'charge' THEN upper(substr(md5(i::text), 1, 6)) END, at, at, "
        "CASE WHEN kind IN ('refund', 'void') THEN 'txn_' || substr(md5('txn' || (s)), 1, 16) END, "
        "CASE WHEN kind = 'charge' THEN CAST(at AS date) END, '', 'bench' "
        "FROM (SELECT i, kind, s, "
        "      CASE WHEN kind IN ('payment', 'interest') THEN NULL "
        f"           WHEN ((s * 7 + s / :a) % 20) = 0 THEN {_FOREIGN} ELSE {_HOME} END AS pn, "
        # A refund or void that would fall after now is moved into the last day, one second
        # apart: pinned to now itself, 1,500 rows shared one time, which no real ledger has
        # (the newest-first page then had to sort all of them to find its 25).
        "      CASE kind WHEN 'refund' THEN least(CAST(:now AS timestamptz) "
        "           - (i % 86400) * interval '1 second', "
        f"           {_TS.format(x='s')} + (1 + i % 20) * interval '1 day') "
        "           WHEN 'void' THEN least(CAST(:now AS timestamptz) "
        "           - (i % 86400) * interval '1 second', "
        f"           {_TS.format(x='s')} + interval '1 hour') "
        f"           ELSE {_TS.format(x='i')} END AS at "
        "      FROM (SELECT i, kind, CASE WHEN kind IN ('refund', 'void') THEN i - :a ELSE i END AS s "
        f"            FROM (SELECT i, {_KIND} AS kind "
        "                  FROM (SELECT i, (i * 37 + 13 * (i / :a)) % 100 AS c "
        "                        FROM generate_series(1::bigint, :n) i) g0) g1) g2) g3",
    ),
    (
        "account balances and limits",
        "UPDATE accounts a SET balance_cents = b.total, "
        "credit_limit_cents = greatest(2500000, ((b.total + 1500000) / 100000) * 100000) "
        "FROM (SELECT account_id, sum(CASE WHEN kind IN ('charge', 'interest') THEN amount_cents "
        "      ELSE -amount_cents END) AS total FROM transactions GROUP BY account_id) b "
        "WHERE a.account_id = b.account_id",
    ),
    (
        "accounts without rows",
        "UPDATE accounts SET credit_limit_cents = 2500000 WHERE credit_limit_cents = 0",
    ),
    (
        "practice_accounts",
        "INSERT INTO practice_accounts (practice_id, account_id, reason, linked_at, linked_by) "
        "SELECT opened_by_practice_id, account_id, 'applied', opened_at, 'bench' FROM accounts",
    ),
    (
        "practice_accounts (transacted)",
        "INSERT INTO practice_accounts (practice_id, account_id, reason, linked_at, linked_by) "
        "SELECT DISTINCT t.practice_id, t.account_id, 'transacted', CAST(:now AS timestamptz), 'bench' "
        "FROM transactions t WHERE t.practice_id IS NOT NULL ON CONFLICT DO NOTHING",
    ),
    (
        "promotions",
        "INSERT INTO promotions (promotion_id, account_id, transaction_id, plan_code, original_cents, "
        "balance_cents, starts_on, ends_on, status, apr) "
        "SELECT 'prm_' || substr(md5(t.transaction_id), 1, 16), t.account_id, t.transaction_id, t.plan_code, "
        "t.amount_cents, t.amount_cents - coalesce(r.amount_cents, 0), CAST(t.occurred_at AS date), "
        "CAST(t.occurred_at AS date) + CAST(substr(t.plan_code, 3) || ' months' AS interval), 'open', "
        "CASE WHEN t.plan_code LIKE 'RA%' THEN 15.90 ELSE 0 END "
        "FROM transactions t LEFT JOIN transactions r ON r.related_id = t.transaction_id "
        "WHERE t.kind = 'charge' AND t.plan_code <> 'STD' "
        "AND t.occurred_at >= CAST(:now AS timestamptz) - interval '180 days' "
        "AND (r.kind IS NULL OR r.kind = 'refund')",
    ),
    (
        "applications",
        "INSERT INTO applications"  # noqa: S608 - constants only, the values are bound
        " (application_id, practice_id, location_id, first_name, last_name, "
        "date_of_birth, street, city, state, zip, email, phone, annual_income_cents, monthly_housing_cents, "
        "requested_cents, consent, consent_text, consent_at, status, credit_limit_cents, reasons, "
        "review_notes, submitted_by, submitted_by_name, submitted_at) "
        "SELECT 'app_' || substr(md5('app' || i), 1, 16), :p, 'loc_' || lpad(to_hex(1 + i % 4), 16, '0'), "
        "'Pat', 'Doe', DATE '1980-01-01', '1 Oak', "
        "'Portland', 'OR', '97214', 'p@example.test', '(503) 555-0101', 6000000, 120000, 300000, true, "
        "'yes', ts, (ARRAY['approved','approved','approved','declined','pending_review'])[1 + i % 5], 0, "
        "'', '', 'bench', 'Bench', ts "
        f"FROM (SELECT i, {_TS.format(x='i')} AS ts FROM generate_series(1::bigint, :applications) i) g",
    ),
    (
        "deposits",
        "INSERT INTO deposits (deposit_id, practice_id, business_date, charges_cents, refunds_cents, "  # noqa: S608
        "fees_cents, net_cents, items, created_at) SELECT 'dep_' || substr(md5('dep' || d), 1, 16), :p, "
        "CAST(:now AS date) - d, "
        "10000000, 500000, 800000, 8700000, 2500, now() FROM generate_series(1, 400) d",
    ),
)


def generate(
    engine: sa.Engine,
    transactions: int,
    accounts: int | None = None,
    say: Callable[[str], None] | None = None,
    now: datetime = NOW,
) -> dict[str, float]:
    """Fill a freshly migrated portal database, with the rows' times in the 400 days before
    ``now``; returns the seconds each step took."""
    accounts = accounts or max(100, transactions // 10)
    if accounts % 100:
        raise ValueError("accounts must be a multiple of 100 (see _KIND)")
    params = {
        "p": PRACTICE,
        "others": OTHERS,
        "plans": list(PLANS),
        "a": accounts,
        "n": transactions,
        "applications": max(1, transactions // 20),
        "now": now,
    }
    timings: dict[str, float] = {}
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE transactions DISABLE TRIGGER {ROLLUP_TRIGGER}")
        for name, sql in STATEMENTS:
            started = time.monotonic()
            conn.execute(sa.text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
            timings[name] = round(time.monotonic() - started, 1)
            if say:
                say(f"{name}: {timings[name]} s")
        # The migration's own back-fill, then the trigger keeps report_days from here on.
        started = time.monotonic()
        conn.exec_driver_sql(BACKFILL.format(day=DAY_POSTGRESQL))
        conn.exec_driver_sql(f"ALTER TABLE transactions ENABLE TRIGGER {ROLLUP_TRIGGER}")
        timings["report_days back-fill"] = round(time.monotonic() - started, 1)
        if say:
            say(f"report_days back-fill (migration 0006's SQL): {timings['report_days back-fill']} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.monotonic()
        conn.exec_driver_sql("VACUUM ANALYZE")
        timings["vacuum analyze"] = round(time.monotonic() - started, 1)
    return timings
