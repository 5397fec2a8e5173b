"""The portal's pages and money API over 100,000 accounts and 1,000,000 transactions (issue 7;
not in CI).

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.portal

1. Creates a portal database on that server, migrates it and fills it inside PostgreSQL with
   :mod:`bench.dataset` (the generator ``bench.reports`` uses), the rows' times in the 400 days
   before now.
2. Starts auth as ``bench.ours`` does (``auth web`` and ``auth grpc``, their own database and
   Redis), registered with the portal's address, with a pool of ``admin`` users of the large
   practice; then ``python -m services.cli portal web`` (gunicorn, ``PORTAL_WEB_WORKERS=2``),
   the argv of ``services/common/supervisor.py``, on the same Redis and auth.
3. Each caller process signs in as a browser does: portal ``/`` → ``/login`` → auth's
   ``/authorize``, sign-in page, password, TOTP code → the portal's ``/auth/callback``; it keeps
   the portal's session cookie for the pages. For the API it asks auth for a code for the
   portal's client with the same auth session and exchanges it at ``/token`` with the portal's
   client secret: a real access token for the portal's audience. The portal checks the page's
   session token, or the API's bearer token, with auth over gRPC on every request.
4. Measures each row with ``BENCH_PORTAL_CALLERS`` callers (closed loop, ``bench.load``):
   the account page and the API's account, the dashboard, the transactions list (first page, a
   search, a filter), and charges through the API (one ``Idempotency-Key`` each, random accounts
   of the large practice, all with credit), counting every refused charge.

Prints a table and writes ``var/bench/portal.json``, with the 1-minute load average after each
row. Stops every process it started and drops both databases.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from bench import dataset, load
from bench.client import Browser, Connection, basic_auth, code_of, expect, path_of, sign_in_redirect
from bench.load import CallerSpec
from bench.ours import SCOPE, Ours, User, spawn
from bench.util import pkce_pair

RESULTS = Path("var/bench/portal.json")
GOAL_P95_MS = 50.0
# One access token lasts the whole run (auth's default lifetime is 300 s).
LIFETIME_S = "3600"
_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"  {time.monotonic() - _STARTED:6.1f} s · {message}", file=sys.stderr, flush=True)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


class Portal:
    """``portal web`` with the benchmark's database, on auth (``ours``) and its Redis."""

    def __init__(self, ours: Ours, database_url: str, port: int) -> None:
        self.port = port
        self.env = {
            **ours.env,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_HTTP_BIND": f"127.0.0.1:{port}",
            "PORTAL_WEB_WORKERS": "2",
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(32),
            "PC_VAR_DIR": str(ours.directory / "portal-var"),
        }
        self.log = ours.directory / "logs" / "portal-web.log"
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        from services.common.supervisor import process_specs, wait_ready

        specs = [s for s in process_specs(self.env) if s.name == "portal-web"]
        self.processes["portal-web"] = spawn(specs[0].argv, self.env, self.log)
        try:
            wait_ready(specs, self.processes, 60)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log.read_text(errors='replace')[-2000:]}") from exc

    def stop(self) -> None:
        from services.common.supervisor import stop

        stop(self.processes, grace_s=15)
        self.processes = {}

    @property
    def pid(self) -> int:
        return self.processes["portal-web"].pid

    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.port)


def sign_in(ours: Ours, portal: Portal, user: User) -> tuple[dict[str, str], str]:
    """A browser signed in at the portal through auth (its session cookie), and an access token
    for the portal's audience from the same auth session (the portal's client, code + PKCE)."""
    url = portal.env["PORTAL_URL"]
    browser = Browser(portal.connection())
    reply = expect(browser.get("/"), 302, "portal /")
    reply = expect(browser.get(path_of(reply.location)), 302, "portal /login")
    at_auth = Browser(ours.connection())
    back = sign_in_redirect(at_auth, path_of(reply.location), user.as_tuple(), f"{url}/auth/callback")
    expect(browser.get(path_of(back)), 302, "portal /auth/callback")
    expect(browser.get("/"), 200, "dashboard after sign-in")

    verifier, challenge = pkce_pair()
    client_id = "portal"
    authorize = "/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": f"{url}/auth/callback",
            "scope": SCOPE,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    code = code_of(expect(at_auth.get(authorize), 302, "authorize for an API token").location)
    reply = ours.connection().post_form(
        "/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{url}/auth/callback",
            "code_verifier": verifier,
        },
        {"Authorization": basic_auth(client_id, ours.env["PORTAL_CLIENT_SECRET"])},
    )
    token = expect(reply, 200, "token for the API").json()["access_token"]
    return browser.cookies, token


def main() -> int:
    server = os.environ.get("BENCH_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        print(
            "bench.portal needs PostgreSQL: set BENCH_DATABASE_URL, e.g.\n"
            "  BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres "
            ".venv/bin/python -m bench.portal",
            file=sys.stderr,
        )
        return 2
    transactions = _int("BENCH_PORTAL_TRANSACTIONS", 1_000_000)
    accounts = _int("BENCH_PORTAL_ACCOUNTS", 100_000)
    callers = _int("BENCH_PORTAL_CALLERS", 4)
    count = _int("BENCH_PORTAL_REQUESTS", 100)
    charges = _int("BENCH_PORTAL_CHARGES", 100)
    warmup = _int("BENCH_PORTAL_WARMUP", 10)
    # Fewer for the transactions list rows: its search takes a few hundred ms each (bench/README.md).
    list_count = _int("BENCH_PORTAL_LIST_REQUESTS", 50)
    list_warmup = _int("BENCH_PORTAL_LIST_WARMUP", 5)
    rng = random.Random(_int("BENCH_SEED", 7))  # noqa: S311 - which accounts, not secrets
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    began = time.monotonic()

    # A development aid: BENCH_PORTAL_DATABASE names a database already generated on that server
    # (kept from an earlier run): it is migrated to the head, used as it is and not dropped.
    reused = os.environ.get("BENCH_PORTAL_DATABASE", "")
    name = reused or f"pc_bench_portal_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    if not reused:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    # Held until the portal starts, so that none of auth's free ports (HTTP, gRPC, Redis) is this one.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    ours = Ours(
        workers=2,
        portal_url=f"http://127.0.0.1:{port}",
        extra_env={"AUTH_ACCESS_TOKEN_TTL_S": LIFETIME_S},
    )
    portal: Portal | None = None
    try:
        from services import migrate

        migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url})
        steps: dict[str, float] = {}
        generated_s = None
        if not reused:
            say(f"generating {accounts:,} accounts and {transactions:,} transactions in PostgreSQL")
            started = time.monotonic()
            steps = dataset.generate(engine, transactions, accounts, say=lambda m: say(f"  {m}"), now=now)
            generated_s = round(time.monotonic() - started, 1)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
            counted = {
                table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()  # noqa: S608 - constants
                for table in ("accounts", "transactions", "practice_accounts", "promotions", "audit_log")
            }
        engine.dispose()
        accounts = int(counted["accounts"])
        say(f"generated in {generated_s} s: {counted}")

        say("starting auth web, auth grpc and portal web")
        ours.start()
        users = ours.add_data(callers, practice_id=dataset.PRACTICE, roles=("admin",))
        portal = Portal(ours, url, port)
        held.close()
        portal.start()
        say(f"signing in {callers} browsers through the portal and auth")
        sessions = [sign_in(ours, portal, user) for user in users]

        # The large practice's own accounts (9 in 10: i % 10 != 0), in a random order per caller.
        own = [i for i in range(1, accounts + 1) if i % 10]
        per_caller = warmup + count

        def cookie(i: int) -> dict[str, str]:
            return {"Cookie": "; ".join(f"{k}={v}" for k, v in sessions[i][0].items())}

        def bearer(i: int) -> dict[str, str]:
            return {"Authorization": f"Bearer {sessions[i][1]}"}

        def account_paths(prefix: str) -> list[str]:
            return [f"{prefix}/{dataset.row_id('acc', n)}" for n in rng.sample(own, per_caller)]

        surname = "Nguyen"
        filter_query = urlencode({"kind": "refund", "location_id": dataset.location_id(2)})
        rows_spec = [
            (
                "account page",
                "GET /accounts/<id>",
                cookie,
                lambda: account_paths("/accounts"),
                "Available",
                False,
            ),
            (
                "account (API)",
                "GET /api/v1/accounts/<id>",
                bearer,
                lambda: account_paths("/api/v1/accounts"),
                "",
                False,
            ),
            ("dashboard", "GET /", cookie, lambda: ["/"], "", False),
            ("transactions: first page", "GET /transactions", cookie, lambda: ["/transactions"], "", True),
            (
                "transactions: search",
                f"GET /transactions?q={surname.lower()}",
                cookie,
                lambda: [f"/transactions?q={surname.lower()}"],
                surname,
                True,
            ),
            (
                "transactions: filter",
                f"GET /transactions?{filter_query}",
                cookie,
                lambda: [f"/transactions?{filter_query}"],
                "",
                True,
            ),
        ]
        address = f"127.0.0.1:{port}"
        watched = [portal.pid, ours.processes["auth-grpc"].pid]
        if ours.redis_process is not None:
            watched.append(ours.redis_process.pid)

        def cpu() -> float:
            return load.process_cpu_s(watched)

        meta = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "postgresql": version,
            "table_rows": counted,
            "generated_s": generated_s,
            "generation_steps_s": steps,
            "callers": callers,
            "requests_per_caller": count,
            "warmup_per_caller": warmup,
            "list_requests_per_caller": list_count,
            "list_warmup_per_caller": list_warmup,
            "portal_web_workers": 2,
            "load_average_before": load_average(),
        }
        results = []
        # Each row with all the callers; then once more with one caller (the latency floor: no
        # request waits for another).
        passes = [(row, callers) for row in rows_spec] + [(row, 1) for row in rows_spec]
        for (label, what, headers, paths, marker, is_list), n_callers in passes:
            n, w = (list_count, list_warmup) if is_list else (count, warmup)
            specs = [
                CallerSpec("get", address, w, n, {"paths": paths(), "headers": headers(c), "marker": marker})
                for c in range(n_callers)
            ]
            stats = load.run(specs, cpu).stats
            if n_callers != callers:
                label = f"{label}, 1 caller"
            row = {
                "row": label,
                "request": what,
                "callers": n_callers,
                **stats.as_dict(),
                "load_average": load_average(),
            }
            row["goal_p95_ms"] = GOAL_P95_MS
            row["goal_met"] = not stats.errors and stats.p95_ms < GOAL_P95_MS
            results.append(row)
            say(
                f"{label}: p50 {stats.p50_ms:.1f} ms, p95 {stats.p95_ms:.1f} ms, {stats.per_s:.1f}/s, "
                f"errors {len(stats.errors)}, load {row['load_average']}"
            )

        charge_accounts = [dataset.row_id("acc", n) for n in rng.sample(own, callers * (warmup + charges))]
        # Spread like a day's purchases: the large practice's 4 locations, 7 plans (all with a
        # minimum purchase of $1,000 or less), $1,200 each; every account has $14,000 or more of credit.
        today = datetime.now(UTC).date().isoformat()
        bodies = [
            {
                "location_id": dataset.location_id(1 + k % 4),
                "plan_code": plan,
                "amount_cents": 120_000,
                "description": "Bench treatment",
                "treatment_date": today,
            }
            for k, plan in enumerate(("DI6", "DI12", "DI18", "DI24", "RA24", "RA36", "STD"))
        ]
        prefix = f"bench-{secrets.token_hex(4)}"
        specs = [
            CallerSpec(
                "charge",
                address,
                warmup,
                charges,
                {
                    "accounts": charge_accounts[c * (warmup + charges) : (c + 1) * (warmup + charges)],
                    "headers": bearer(c),
                    "bodies": bodies,
                    "key_prefix": f"{prefix}-{c}",
                    "timed_from": warmup,
                },
            )
            for c in range(callers)
        ]
        run = load.run(specs, cpu)
        stats = run.stats
        ok = sum(s.get("ok", 0) for s in run.states)
        timed_ok = sum(s.get("timed_ok", 0) for s in run.states)
        failed = sum(s.get("failed", 0) for s in run.states)
        failures = [f for s in run.states for f in s.get("failures", [])][:10]
        charge_row = {
            "row": "charges (API)",
            "request": "POST /api/v1/accounts/<id>/charges",
            **stats.as_dict(),
            "charges_ok": ok,
            "charges_failed": failed,
            "charges_timed_ok": timed_ok,
            # Charges made in the timed part (warm-up excluded) per second of it.
            "charges_per_s": round(timed_ok / stats.seconds, 1) if stats.seconds else None,
            "failures": failures,
            "load_average": load_average(),
        }
        say(f"charges: {charge_row['charges_per_s']}/s ok {ok}, failed {failed}, p95 {stats.p95_ms:.1f} ms")
        meta["load_average_after"] = load_average()
        meta["duration_s"] = round(time.monotonic() - began, 1)
        result = {**meta, "goal_p95_ms": GOAL_P95_MS, "rows": results, "charges": charge_row}
        print(table(result))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nresults written to {RESULTS}")
        errors = [e for r in results for e in r["errors"]] + charge_row["errors"]
        return 1 if errors or failed else 0
    finally:
        held.close()
        if portal is not None:
            say("stopping portal web")
            portal.stop()
        say("stopping auth")
        ours.stop()
        engine.dispose()
        if not reused:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def table(result: dict) -> str:
    lines = [
        f"portal over {result['table_rows']['accounts']:,} accounts and "
        f"{result['table_rows']['transactions']:,} "
        f"transactions (PostgreSQL {result['postgresql']}, {result['cpus']} CPUs, "
        f"{result['callers']} callers × {result['requests_per_caller']} requests, "
        f"× {result['list_requests_per_caller']} for the lists; "
        f"load average {result['load_average_before']} → {result['load_average_after']})",
        "",
        f"{'row':<36} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'CPU ms':>7} {'load':>5}  "
        "goal p95 < 50 ms",
    ]
    for r in result["rows"]:
        cpu = r["server_cpu_ms_per_request"]
        lines.append(
            f"{r['row']:<36} {r['per_s']:>7.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{cpu if cpu is not None else '-':>7} {r['load_average']:>5}  "
            f"{'met' if r['goal_met'] else 'NOT met'}{' (errors)' if r['errors'] else ''}"
        )
    c = result["charges"]
    lines += [
        "",
        f"charges (API): {c['charges_per_s']} charges/s, {c['charges_ok']} made (warm-up included), "
        f"{c['charges_failed']} refused; "
        f"p50 {c['p50_ms']:.1f} ms, p95 {c['p95_ms']:.1f} ms; server CPU {c['server_cpu_ms_per_request']} ms "
        f"per charge; load {c['load_average']}",
    ]
    lines += [f"  refused: {f}" for f in c["failures"]]
    lines += [f"  error: {e}" for r in [*result["rows"], c] for e in r["errors"]]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
