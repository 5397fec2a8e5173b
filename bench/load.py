"""Closed-loop load from several caller processes.

Each caller is its own process (so the callers do not share one GIL) with its
own connection. It does its warm-up requests, waits at a barrier with the
others, then makes a fixed number of requests one after another, timing each.
Requests per second are the timed requests of all callers divided by the
time from the first caller's start to the last caller's end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bench.client import BenchError, Browser, Connection, expect, sign_in

BARRIER_TIMEOUT_S = 300.0


@dataclass
class CallerSpec:
    """What one caller process does; ``kind`` names the loop (see ``_prepare``)."""

    kind: str
    address: str
    warmup: int
    count: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallerResult:
    latencies: list[float]
    start: float
    end: float
    error: str | None
    state: dict[str, Any]


@dataclass
class Stats:
    requests: int
    seconds: float
    per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: list[str]
    # The server's CPU time per request (warm-up included), when its processes were watched:
    # unlike req/s, other work on the machine does not lower it.
    cpu_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_cpu_ms_per_request": None if self.cpu_ms is None else round(self.cpu_ms, 3),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "errors": self.errors,
        }


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarise(
    latencies: list[float], seconds: float, errors: list[str], cpu_ms: float | None = None
) -> Stats:
    ordered = sorted(latencies)
    ms = [v * 1000 for v in ordered]
    return Stats(
        requests=len(ordered),
        seconds=seconds,
        per_s=len(ordered) / seconds if seconds > 0 else float("nan"),
        p50_ms=percentile(ms, 0.50),
        p95_ms=percentile(ms, 0.95),
        p99_ms=percentile(ms, 0.99),
        max_ms=ms[-1] if ms else float("nan"),
        errors=errors,
        cpu_ms=cpu_ms,
    )


@dataclass
class Run:
    """One load run: every timed latency, the span from first start to last end, errors, states,
    and the server CPU seconds spent on all its requests (warm-up included), when watched."""

    latencies: list[float]
    seconds: float
    errors: list[str]
    states: list[dict[str, Any]]
    cpu_s: float | None = None
    all_requests: int = 0

    @property
    def stats(self) -> Stats:
        return summarise(self.latencies, self.seconds, self.errors, _cpu_ms([self]))


def _cpu_ms(runs: list[Run]) -> float | None:
    if any(r.cpu_s is None for r in runs):
        return None
    total = sum(r.all_requests for r in runs)
    return 1000 * sum(r.cpu_s or 0.0 for r in runs) / total if total else None


def merge(runs: list[Run]) -> Stats:
    """Figures over several runs (rounds): their latencies together, their spans added up."""
    return summarise(
        [v for r in runs for v in r.latencies],
        sum(r.seconds for r in runs),
        [e for r in runs for e in r.errors],
        _cpu_ms(runs),
    )


def run(specs: list[CallerSpec], cpu: Callable[[], float] | None = None) -> Run:
    """Run the callers at once; returns their figures and each caller's final state.

    ``cpu`` reads the server's CPU seconds so far; read before and after the run.
    """
    # Fresh interpreters (nothing inherited from this process's threads and sockets),
    # forked from a server that has already imported this module: fast to start.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["bench.load"])
    barrier = ctx.Barrier(len(specs))
    results: Any = ctx.Queue()
    processes = [ctx.Process(target=_caller, args=(spec, barrier, results), daemon=True) for spec in specs]
    cpu_before = cpu() if cpu else 0.0
    for process in processes:
        process.start()
    collected: list[CallerResult] = []
    try:
        while len(collected) < len(specs):
            try:
                collected.append(results.get(timeout=5))
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    break
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    cpu_s = cpu() - cpu_before if cpu else None
    errors = [r.error for r in collected if r.error]
    if len(collected) < len(specs):
        errors.append(f"{len(specs) - len(collected)} caller(s) died without a result")
    timed = [r for r in collected if r.latencies]
    seconds = (max(r.end for r in timed) - min(r.start for r in timed)) if timed else 0.0
    latencies = [v for r in collected for v in r.latencies]
    all_requests = len(latencies) + sum(s.warmup for s in specs)
    return Run(latencies, seconds, errors, [r.state for r in collected], cpu_s, all_requests)


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, …; utime and stime are fields 14 and 15 of stat(5).
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    chosen = set(pids)
    grew = True
    while grew:
        grown = {pid for pid, (ppid, _) in stats.items() if ppid in chosen} - chosen
        grew = bool(grown)
        chosen |= grown
    return sum(stats[pid][1] for pid in chosen if pid in stats)


def _caller(spec: CallerSpec, barrier: Any, results: Any) -> None:
    state: dict[str, Any] = {}
    try:
        step = _prepare(spec, state)
        for i in range(spec.warmup):
            step(i)
    except Exception as exc:  # noqa: BLE001 - reported in the results, not raised in a child
        barrier.abort()
        results.put(CallerResult([], 0.0, 0.0, f"warm-up: {type(exc).__name__}: {exc}", state))
        return
    try:
        barrier.wait(BARRIER_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - another caller failed its warm-up
        results.put(CallerResult([], 0.0, 0.0, f"barrier: {type(exc).__name__}", state))
        return
    latencies: list[float] = []
    error = None
    clock = time.perf_counter
    start = clock()
    try:
        for i in range(spec.warmup, spec.warmup + spec.count):
            began = clock()
            step(i)
            latencies.append(clock() - began)
    except Exception as exc:  # noqa: BLE001 - reported in the results
        error = f"{type(exc).__name__}: {exc}"
    end = clock()
    results.put(CallerResult(latencies, start, end, error, state))


def _prepare(spec: CallerSpec, state: dict[str, Any]) -> Callable[[int], None]:
    if spec.kind == "grpc":
        return _grpc_step(spec, state)
    host, _, port = spec.address.rpartition(":")
    connection = Connection(host, int(port))
    p = spec.params
    headers = {"Authorization": p["auth"]} if p.get("auth") else {}

    if spec.kind == "code":
        # Pre-minted authorization codes, one per request.
        def code_step(i: int) -> None:
            code, verifier = p["codes"][i]
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": p["redirect_uri"],
                "code_verifier": verifier,
            }
            body = expect(connection.post_form(p["path"], form, headers), 200, "code exchange").json()
            if "access_token" not in body or "refresh_token" not in body:
                raise BenchError(f"code exchange answered without tokens: {sorted(body)}")
            state["refresh_token"] = body["refresh_token"]
            state["access_token"] = body["access_token"]

        return code_step

    if spec.kind == "refresh":
        # Each request spends the refresh token the previous answer gave (rotation).
        state["refresh_token"] = p["refresh_token"]
        state["rotated"] = 0

        def refresh_step(i: int) -> None:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": state["refresh_token"],
                **p.get("extra", {}),
            }
            body = expect(connection.post_form(p["path"], form, headers), 200, "refresh").json()
            new = body.get("refresh_token") or state["refresh_token"]
            if new != state["refresh_token"]:
                state["rotated"] += 1
            state["refresh_token"] = new
            state["access_token"] = body["access_token"]

        return refresh_step

    if spec.kind == "form":
        # The same form again and again (client credentials, introspection, recovery pages).
        body = urlencode(p["form"]).encode()
        want = p["expect"]

        def form_step(i: int) -> None:
            reply = connection.request("POST", p["path"], body, headers)
            expect(reply, 200, p["path"])
            if want == "access_token" and b'"access_token"' not in reply.body:
                raise BenchError(f"no access token: {reply.text[:200]!r}")
            if want == "active" and not reply.json().get("active"):
                raise BenchError(f"introspection said inactive: {reply.text[:200]!r}")

        return form_step

    if spec.kind == "signin":
        return _signin_step(connection, p)

    if spec.kind == "get":
        return _get_step(connection, p)

    if spec.kind == "charge":
        return _charge_step(connection, p, state)

    raise ValueError(f"unknown caller kind {spec.kind!r}")


def _signin_step(connection: Connection, p: dict[str, Any]) -> Callable[[int], None]:
    """One whole browser sign-in per step (a fresh cookie jar), each with a user of its own,
    so the single use of a TOTP code per user and time step never refuses one."""

    def step(i: int) -> None:
        sign_in(Browser(connection), p["authorize"][i], tuple(p["users"][i]), p["redirect_uri"])

    return step


def _get_step(connection: Connection, p: dict[str, Any]) -> Callable[[int], None]:
    """GET ``paths[i % len(paths)]`` with fixed headers (a session cookie or a bearer token);
    anything but 200 with ``marker`` in the body is an error (a redirect to sign in, say)."""
    paths, headers, marker = p["paths"], p.get("headers", {}), p.get("marker", "").encode()

    def step(i: int) -> None:
        path = paths[i % len(paths)]
        reply = expect(connection.request("GET", path, headers=headers), 200, path)
        if marker and marker not in reply.body:
            raise BenchError(f"{path}: no {marker!r} in the page: {reply.text[:200]!r}")

    return step


def _charge_step(connection: Connection, p: dict[str, Any], state: dict[str, Any]) -> Callable[[int], None]:
    """POST one charge (JSON, ``bodies[i % len(bodies)]``) to ``accounts[i]`` with an
    Idempotency-Key of its own. A refusal is counted in ``state`` (``failed``, the first few
    answers in ``failures``), not raised, so the run goes on and reports every failure."""
    headers = {**p.get("headers", {}), "Content-Type": "application/json"}
    bodies = [json.dumps(body).encode() for body in p["bodies"]]
    state.update(ok=0, failed=0, failures=[], timed_ok=0)

    def step(i: int) -> None:
        account = p["accounts"][i % len(p["accounts"])]
        reply = connection.request(
            "POST",
            f"/api/v1/accounts/{account}/charges",
            bodies[i % len(bodies)],
            {**headers, "Idempotency-Key": f"{p['key_prefix']}-{i}"},
        )
        if reply.status == 201 and b'"authorization_code"' in reply.body:
            state["ok"] += 1
            if i >= p.get("timed_from", 0):  # after the warm-up
                state["timed_ok"] += 1
        else:
            state["failed"] += 1
            if len(state["failures"]) < 5:
                state["failures"].append(f"HTTP {reply.status}: {reply.text[:160]}")

    return step


def _grpc_step(spec: CallerSpec, state: dict[str, Any]) -> Callable[[int], None]:
    import grpc

    from providercenter.auth.v1 import token_pb2, token_pb2_grpc

    channel = grpc.insecure_channel(spec.address)
    stub = token_pb2_grpc.TokenServiceStub(channel)
    request = token_pb2.ValidateTokenRequest(token=spec.params["token"], audience=spec.params["audience"])

    def step(i: int) -> None:
        response = stub.ValidateToken(request, timeout=5)
        if not response.active:
            raise BenchError(f"ValidateToken said inactive: {response.reason}")

    return step
