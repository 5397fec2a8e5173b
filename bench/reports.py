"""Reports over 1,000,000 transactions in PostgreSQL: p95 latency per report (issue 8; not in CI).

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.reports

Creates a new database on that server, migrates it, generates the benchmarks' data set inside
PostgreSQL (:mod:`bench.dataset`, shared with ``bench.portal``: ``BENCH_TRANSACTIONS`` ledger
rows, default 1,000,000, inserted with the roll-up trigger disabled, then ``report_days``
back-filled with migration 0006's own SQL), then times each report as the page runs it
(``ReportService.run``: the permission check, the queries and the audit entry) over the default
range, the last 12 months, for the large practice. ``BENCH_REPORT_RUNS`` timed runs per report
after 3 warm-up runs; nearest-rank p50/p95 — once as migrated, once more with
:data:`PROPOSED_INDEX`. Prints a table and writes ``var/bench/reports.json`` (with the 1-minute
load average before and after); drops the database at the end.
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

from bench.dataset import NOW, PRACTICE, generate
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


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


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
        print(
            f"  {spec.slug:<22} p50 {rows[-1]['p50_ms']:>7} ms   p95 {rows[-1]['p95_ms']:>7} ms   "
            f"{'met' if p95 < GOAL_MS else 'NOT met'}",
            file=sys.stderr,
            flush=True,
        )
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
        steps = generate(engine, transactions, say=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        generated_s = round(time.monotonic() - started, 1)
        print(f"  generated {transactions:,} transactions in {generated_s} s", file=sys.stderr, flush=True)
        load_before = os.getloadavg()
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
            "cpus": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "generated_s": generated_s,
            "generation_steps_s": steps,
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
