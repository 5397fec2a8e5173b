"""Reports over 1,000,000 transactions in PostgreSQL: p95 latency per report (issue 8; not in CI).

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.reports

Creates a new database on that server, migrates it, generates one large practice's
year-and-a-bit of activity *inside* PostgreSQL (``INSERT … SELECT generate_series``:
``BENCH_TRANSACTIONS`` ledger rows, default 1,000,000 — charges, refunds, voids,
payments — over 4 locations and every plan, plus applications and daily deposits),
then times each report as the page runs it (``ReportService.run``: the permission
check, the ``GROUP BY`` queries and the audit entry) over the default range, the
last 12 months. ``BENCH_REPORT_RUNS`` timed runs per report after 3 warm-up runs;
nearest-rank p50/p95 — once as migrated, once more with :data:`PROPOSED_INDEX`.
Prints a table and writes ``var/bench/reports.json``; drops the database at the end.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from services import migrate
from services.common import db
from services.portal import reports
from services.portal.permissions import Actor
from services.portal.service_layer.unit import Deps

RESULTS = Path("var/bench/reports.json")
# Measured a second time with this covering index (not in the migrations yet): the ledger's
# report queries filter on practice, kind and time and read amount, location, plan and related id.
PROPOSED_INDEX = (
    "CREATE INDEX ix_transactions_practice_kind_occurred ON transactions (practice_id, kind, occurred_at) "
    "INCLUDE (amount_cents, location_id, plan_code, related_id)"
)
GOAL_MS = 200.0
NOW = datetime(2027, 1, 15, 12, tzinfo=UTC)
PRACTICE = "bench-large-practice"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def generate(engine: sa.Engine, transactions: int) -> None:
    """Everything in SQL on the server. Row i's time is spread over the 400 days before NOW
    (104729 is prime, so consecutive rows scatter)."""
    accounts = max(1, transactions // 10)
    statements = [
        ("INSERT INTO practices (practice_id, name, created_at, refund_step_up_cents) "
         "VALUES (:p, 'Bench Dental Group', now(), 50000), ('bench-other', 'Other Dental', now(), 50000)"),
        ("INSERT INTO locations (location_id, practice_id, name, street, city, state, zip, phone, "
         "created_at) "
         "SELECT 'loc_bench' || i, CASE WHEN i <= 4 THEN :p ELSE 'bench-other' END, 'Office ' || i, "
         "'1 Main St', 'Portland', 'OR', '97214', '(503) 555-0100', now() FROM generate_series(1, 5) i"),
        ("INSERT INTO cardholders (cardholder_id, first_name, last_name, date_of_birth, street, city, state, "
         "zip, email, phone, created_at) SELECT 'ch_' || i, 'Pat', 'Doe' || i, DATE '1980-01-01', '1 Oak', "
         "'Portland', 'OR', '97214', 'p@example.test', '(503) 555-0101', now() "
         "FROM generate_series(1, :accounts) i"),
        ("INSERT INTO accounts (account_id, number, cardholder_id, status, credit_limit_cents, "
         "balance_cents, apr, opened_at, opened_by_practice_id, accrued_interest) SELECT 'acc_' || i, "
         "'6' || lpad(i::text, 15, '0'), 'ch_' || i, 'active', 2500000, 0, 26.99, now(), :p, 0 "
         "FROM generate_series(1, :accounts) i"),
        # Ledger rows: ~88% charges, 7% refunds, 1% voids, 4% payments; 400 days back from NOW;
        # 5% belong to another practice (tenancy: never counted).
        ("INSERT INTO transactions (transaction_id, account_id, practice_id, location_id, kind, "
         "amount_cents, plan_code, description, occurred_at, created_at, related_id, disclosure, created_by) "
         "SELECT 'txn_' || i, 'acc_' || (1 + i % :accounts), "
         "CASE WHEN i % 20 = 0 THEN 'bench-other' ELSE :p END, "
         "CASE WHEN i % 20 = 0 THEN 'loc_bench5' ELSE 'loc_bench' || (1 + i % 4) END, "
         "CASE WHEN i % 100 < 88 THEN 'charge' WHEN i % 100 < 95 THEN 'refund' "
         "     WHEN i % 100 < 96 THEN 'void' ELSE 'payment' END, "
         "20000 + (i * 7919) % 480000, "
         "(ARRAY['DI6','DI12','DI18','DI24','RA24','RA36','RA48','RA60','STD'])[1 + i % 9], "
         "'Treatment', ts, ts, "
         "CASE WHEN i % 100 BETWEEN 88 AND 95 THEN 'txn_' || (i - 90) END, '', 'bench' "
         "FROM (SELECT i, CAST(:now AS timestamptz) "
         "      - ((i * 104729) % (400 * 86400)) * interval '1 second' AS ts "
         "      FROM generate_series(1::bigint, :transactions) i) g"),
        ("INSERT INTO applications (application_id, practice_id, location_id, first_name, last_name, "
         "date_of_birth, street, city, state, zip, email, phone, annual_income_cents, monthly_housing_cents, "
         "requested_cents, consent, consent_text, consent_at, status, credit_limit_cents, reasons, "
         "review_notes, "
         "submitted_by, submitted_by_name, submitted_at) "
         "SELECT 'app_' || i, :p, 'loc_bench' || (1 + i % 4), 'Pat', 'Doe', DATE '1980-01-01', '1 Oak', "
         "'Portland', 'OR', '97214', 'p@example.test', '(503) 555-0101', 6000000, 120000, 300000, true, "
         "'yes', "
         "ts, (ARRAY['approved','approved','approved','declined','pending_review'])[1 + i % 5], 0, '', '', "
         "'bench', 'Bench', ts "
         "FROM (SELECT i, CAST(:now AS timestamptz) "
         "      - ((i * 104729) % (400 * 86400)) * interval '1 second' AS ts "
         "      FROM generate_series(1::bigint, :applications) i) g"),
        ("INSERT INTO deposits (deposit_id, practice_id, business_date, charges_cents, refunds_cents, "
         "fees_cents, net_cents, items, created_at) SELECT 'dep_' || d, :p, CAST(:now AS date) - d, "
         "10000000, 500000, 800000, 8700000, 2500, now() FROM generate_series(1, 400) d"),
        "ANALYZE",
    ]
    params = {
        "p": PRACTICE,
        "accounts": accounts,
        "transactions": transactions,
        "applications": max(1, transactions // 20),
        "now": NOW,
    }
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(sa.text(sql), {k: v for k, v in params.items() if f":{k}" in sql})


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def measure(engine: sa.Engine, runs: int) -> list[dict[str, object]]:
    service = reports.ReportService(Deps(db.session_factory(engine), NOW.timestamp))
    actor = Actor(sub="bench", practice_id=PRACTICE, roles=("admin",), name="Bench")
    rows = []
    for spec in reports.SPECS:
        for _ in range(3):
            service.run(actor, spec.slug, {})
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            report = service.run(actor, spec.slug, {})
            times.append((time.perf_counter() - started) * 1000)
        p95 = percentile(times, 0.95)
        rows.append(
            {
                "report": spec.slug,
                "rows": len(report.rows),
                "p50_ms": round(percentile(times, 0.50), 1),
                "p95_ms": round(p95, 1),
                "goal_met": p95 < GOAL_MS,
            }
        )
        print(f"  {spec.slug:<22} p50 {rows[-1]['p50_ms']:>7} ms   p95 {rows[-1]['p95_ms']:>7} ms   "
              f"{'met' if p95 < GOAL_MS else 'NOT met'}", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    server = os.environ.get("BENCH_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        print("BENCH_DATABASE_URL must name a PostgreSQL server", file=sys.stderr)
        return 2
    transactions = _int("BENCH_TRANSACTIONS", 1_000_000)
    runs = _int("BENCH_REPORT_RUNS", 40)
    name = f"pc_bench_reports_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    try:
        migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url})
        started = time.monotonic()
        generate(engine, transactions)
        print(f"  generated {transactions:,} transactions in {time.monotonic() - started:.1f} s",
              file=sys.stderr, flush=True)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
            counted = conn.exec_driver_sql("SELECT count(*) FROM transactions").scalar()
        print("  as migrated:", file=sys.stderr, flush=True)
        rows = measure(engine, runs)
        with engine.begin() as conn:
            conn.exec_driver_sql(PROPOSED_INDEX)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE transactions")
        print("  with the proposed covering index:", file=sys.stderr, flush=True)
        indexed = measure(engine, runs)
        result = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "postgresql": version,
            "transactions": counted,
            "range": "default: the last 12 months",
            "today": date.isoformat(NOW.date()),
            "runs_per_report": runs,
            "goal_p95_ms": GOAL_MS,
            "reports": rows,
            "proposed_index": PROPOSED_INDEX,
            "reports_with_proposed_index": indexed,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
