"""The machine and versions, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.load import Stats
from bench.ours import ROOT, Ours
from bench.peer import Peer
from bench.scenarios import GRPC_P99_GOAL_MS, Counts, Issue4Result, Pair

PACKAGES = ("flask", "authlib", "gunicorn", "grpcio", "argon2-cffi", "sqlalchemy", "redis")
SIGNIN_GOAL = 0.75
TIMING_GOAL = (0.95, 1.05)


def _run(*argv: str) -> str:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine(ours: Ours, peer: Peer, counts: Counts) -> dict[str, Any]:
    c = ours.container
    s = ours.settings
    with c.engine.connect() as conn:
        if ours.database_kind == "sqlite":
            db_version = "SQLite " + str(conn.exec_driver_sql("select sqlite_version()").scalar())
        else:
            db_version = "PostgreSQL " + str(conn.exec_driver_sql("show server_version").scalar())
    dirty = bool(_run("git", "status", "--porcelain", "--", "services"))
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "node": _run("node", "--version"),
        "oidc_provider": peer.version,
        "packages": {name: _version(name) for name in PACKAGES},
        "redis": c.redis.info("server").get("redis_version", "?"),
        "database": db_version,
        "commit": _run("git", "rev-parse", "--short", "HEAD")
        + (" (+ uncommitted changes in services/)" if dirty else ""),
        "auth_web_workers": ours.workers,
        "argon2id": {
            "memory_kib": s.argon2_memory_kib,
            "time_cost": s.argon2_time_cost,
            "parallelism": s.argon2_parallelism,
        },
        "counts": asdict(counts),
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def results(meta: dict, issue3: list[Pair], four: Issue4Result, five: tuple[Stats, Stats]) -> dict[str, Any]:
    known, unknown = five
    grpc = next(p for p in issue3 if p.goal_p99_ms is not None)
    errors = [f"{p.name} (ours): {e}" for p in issue3 for e in p.ours.errors]
    errors += [f"{p.name} (peer): {e}" for p in issue3 if p.peer for e in p.peer.errors]
    errors += [f"sign-ins: {e}" for e in four.signins.errors]
    return {
        "meta": meta,
        "issue3": {p.name: p.as_dict() for p in issue3},
        "issue3_goals": {
            "token endpoint: ours/peer requests per second": ">= 1.0",
            f"{grpc.name} p99 ms": f"< {GRPC_P99_GOAL_MS}",
            f"{grpc.name} p99 met": grpc.ours.p99_ms < GRPC_P99_GOAL_MS,
        },
        "issue4": four.as_dict(),
        "issue5": {
            "forgot_user_id_known_address": known.as_dict(),
            "forgot_user_id_unknown_address": unknown.as_dict(),
            "known_vs_unknown_median_ratio": round(known.p50_ms / unknown.p50_ms, 3),
            "goal": "about 1 (0.95 .. 1.05)",
        },
        "errors": errors,
    }


def _f(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _cells(stats: dict[str, Any]) -> str:
    """req/s, p50, p95, p99 of one side."""
    ms = [_f(stats[k], 2) for k in ("p50_ms", "p95_ms", "p99_ms")]
    return f"{_f(stats['per_s']):>10} {ms[0]:>7} {ms[1]:>7} {ms[2]:>7}"


def _median(stats: dict[str, Any]) -> str:
    return f"{_f(stats['p50_ms'], 2)} ms (p95 {_f(stats['p95_ms'], 2)})"


def table(r: dict[str, Any]) -> str:
    m = r["meta"]
    a = m["argon2id"]
    lo, hi = TIMING_GOAL
    out: list[str] = []
    w = out.append
    w("")
    w("Provider Center auth vs the peer OpenID Provider — make bench")
    w(f"machine   {m['nproc']} CPUs ({m['cpu']}), {m['os']}")
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    w(f"versions  Python {m['python']}, Node {m['node']}, oidc-provider {m['oidc_provider']}, {packages}")
    w(f"          Redis {m['redis']}, {m['database']}, commit {m['commit']}")
    w(
        f"setup     {m['counts']['callers']} concurrent callers (one process each); auth web = gunicorn, "
        f"{m['auth_web_workers']} workers; argon2id m={a['memory_kib']} KiB t={a['time_cost']} "
        f"p={a['parallelism']}; {m['duration_s']} s in all"
    )
    before, after = m.get("load_average_before") or [0.0], m.get("load_average_after") or [0.0]
    busy = max(before[0], after[0]) > 0.5 * m["nproc"]
    warning = "  — WARNING: the machine was busy with other work; figures are depressed and noisy"
    w(f"load      1-min load average {before[0]} before, {after[0]} after" + (warning if busy else ""))
    w("")
    w("Issue 3 — token endpoint, introspection, ValidateToken (ours vs peer, same run; latencies in ms)")
    head = f"{'':36} {'requests':>8} | {'ours req/s':>10} {'p50':>7} {'p95':>7} {'p99':>7} | "
    head += f"{'peer req/s':>10} {'p50':>7} {'p95':>7} {'p99':>7} | {'ours/peer req/s':>15} {'p99':>6}"
    w(head)
    w("-" * len(head))
    for name, p in r["issue3"].items():
        line = f"{name:36} {p['ours']['requests']:>8} | {_cells(p['ours'])} | "
        if "peer" in p:
            line += f"{_cells(p['peer'])} | {_f(p['ratio_per_s'], 2):>15} {_f(p['ratio_p99'], 2):>6}"
        else:
            line += f"{'(no peer)':>10} {'':>7} {'':>7} {'':>7} | "
            if "goal_p99_ms" in p:
                line += f"goal p99 < {p['goal_p99_ms']:g} ms: {_verdict(p['goal_met'])}"
        w(line)
    w("  ours/peer: req/s above 1 = ours faster (token endpoint goal ≥ 1.00); p99 above 1 = ours slower")
    w("")
    w("Server CPU time per request (warm-up included; other work on the machine does not change it)")
    w(f"{'':36} {'ours ms':>8} {'peer ms':>8} {'ours/peer':>10}")
    for name, p in r["issue3"].items():
        ours_cpu = p["ours"].get("server_cpu_ms_per_request")
        peer_cpu = p.get("peer", {}).get("server_cpu_ms_per_request")
        ratio = ours_cpu / peer_cpu if ours_cpu and peer_cpu else float("nan")
        w(f"{name:36} {_f(ours_cpu, 2):>8} {_f(peer_cpu, 2):>8} {_f(ratio, 2):>10}")
    w(
        "  ours: auth web (gunicorn master + 2 workers) or auth grpc, plus its own Redis server, SQLite "
        "in-process (a PostgreSQL server is not counted); peer: its one Node process"
    )
    for name, p in r["issue3"].items():
        if p.get("note"):
            w(f"  {name}: {p['note']}")
    w("")
    f4 = r["issue4"]
    s = f4["signins"]
    w("Issue 4 — sign-in")
    w(
        f"  argon2id: one verify {_f(f4['argon2id_verify_before_ms'], 2)} ms before the sign-ins, "
        f"{_f(f4['argon2id_verify_after_ms'], 2)} ms after (medians of {f4['argon2id_verify_samples']}, "
        f"wall; CPU {_f(f4['argon2id_verify_cpu_ms'], 2)} ms)"
    )
    w(
        f"  limit = {m['auth_web_workers']} workers ÷ {_f(f4['argon2id_verify_ms'], 2)} ms "
        f"= {_f(f4['limit_signins_per_s'])} sign-ins/s"
    )
    w(
        f"  sign-ins end to end (authorize → password → TOTP → code), {m['counts']['callers']} callers: "
        f"{s['requests']} in {_f(s['seconds'], 2)} s = {_f(s['per_s'])}/s; "
        f"p50 {_f(s['p50_ms'])}, p95 {_f(s['p95_ms'])}, p99 {_f(s['p99_ms'])} ms"
    )
    ratio = f4["signins_vs_limit"]
    verdict = _verdict(ratio >= SIGNIN_GOAL)
    w(f"  sign-ins ÷ argon2id limit = {_f(ratio, 2)}   (goal ≥ {SIGNIN_GOAL}: {verdict})")
    per_signin = s.get("server_cpu_ms_per_request")
    if per_signin:
        share = f4["argon2id_verify_cpu_ms"] / per_signin
        w(
            f"  server CPU per sign-in {_f(per_signin, 1)} ms, of which one verify is "
            f"{_f(f4['argon2id_verify_cpu_ms'], 1)} ms: with the CPUs to itself, sign-ins ÷ limit "
            f"could reach at most {_f(share, 2)}"
        )
    u, k = f4["password_step_unknown_user"], f4["password_step_known_user_wrong_password"]
    w(
        f"  password step, one caller, {u['requests']} each: unknown User ID {_median(u)}, "
        f"known User ID + wrong password {_median(k)}"
    )
    ratio = f4["unknown_vs_known_median_ratio"]
    w(f"  median unknown ÷ known = {_f(ratio, 3)}   (goal {lo}–{hi}: {_verdict(lo <= ratio <= hi)})")
    w("")
    f5 = r["issue5"]
    kn, un = f5["forgot_user_id_known_address"], f5["forgot_user_id_unknown_address"]
    w("Issue 5 — POST /forgot-user-id")
    w(f"  one caller, {kn['requests']} each: known address {_median(kn)}, unknown address {_median(un)}")
    ratio = f5["known_vs_unknown_median_ratio"]
    w(f"  median known ÷ unknown = {_f(ratio, 3)}   (goal ≈ 1, {lo}–{hi}: {_verdict(lo <= ratio <= hi)})")
    if r["errors"]:
        w("")
        w("ERRORS (the figures above are not valid):")
        for error in r["errors"]:
            w(f"  {error}")
    return "\n".join(out)


def write(r: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(r, indent=2, default=str) + "\n")
