"""``providerctl run``: every process of the system on one machine, for local use.

Starts the embedded Redis (unless ``REDIS_URL`` is set), migrates and seeds,
starts each process with the same command the container image uses, waits
until all are ready, prints how to sign in, and on Ctrl-C stops everything it
started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests

from services.common.config import Env, get, var_dir
from services.common.grpc_util import check_health
from services.common.redis_conn import embedded_url, ensure_embedded

STOP_GRACE_S = 15.0
READY_TIMEOUT_S = 120.0
# On one machine running everything, two web workers per service are plenty; the
# production default (2 × CPUs + 1 each) would start ten workers on a laptop.
LOCAL_WEB_WORKERS = "2"


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    # How to tell it is ready: an HTTP URL answering 200, a gRPC address, or nothing.
    http_ready: str | None = None
    grpc_ready: str | None = None


def addresses(env: Env) -> dict[str, str]:
    """The default local addresses of DESIGN.md, each overridable."""
    return {
        "portal_url": get(env, "PORTAL_URL", "http://127.0.0.1:8000") or "",
        "portal_bind": get(env, "PORTAL_HTTP_BIND", "127.0.0.1:8000") or "",
        "auth_issuer": get(env, "AUTH_ISSUER", "http://127.0.0.1:8001") or "",
        "auth_bind": get(env, "AUTH_HTTP_BIND", "127.0.0.1:8001") or "",
        "auth_grpc": get(env, "AUTH_GRPC_ADDR", "127.0.0.1:50051") or "",
        "notify_grpc": get(env, "NOTIFY_GRPC_ADDR", "127.0.0.1:50052") or "",
    }


def process_specs(env: Env) -> list[ProcessSpec]:
    """The long-running processes of DESIGN.md, as the container image starts them."""
    cli = [sys.executable, "-m", "services.cli"]
    addr = addresses(env)
    return [
        ProcessSpec("notify-server", [*cli, "notify", "server"], grpc_ready=addr["notify_grpc"]),
        ProcessSpec("notify-worker", [*cli, "notify", "worker"]),
        ProcessSpec("auth-grpc", [*cli, "auth", "grpc"], grpc_ready=addr["auth_grpc"]),
        ProcessSpec("auth-web", [*cli, "auth", "web"], http_ready=addr["auth_issuer"] + "/healthz"),
        ProcessSpec("auth-relay", [*cli, "auth", "relay"]),
        ProcessSpec("portal-web", [*cli, "portal", "web"], http_ready=addr["portal_url"] + "/healthz"),
    ]


def start(specs: list[ProcessSpec], env: Mapping[str, str]) -> dict[str, subprocess.Popen]:
    return {spec.name: subprocess.Popen(spec.argv, env=dict(env), start_new_session=True) for spec in specs}


def wait_ready(specs: list[ProcessSpec], processes: dict[str, subprocess.Popen], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = [spec for spec in specs if spec.http_ready or spec.grpc_ready]
    while pending:
        for spec in list(pending):
            if processes[spec.name].poll() is not None:
                raise RuntimeError(f"{spec.name} exited with status {processes[spec.name].returncode}")
            if spec.http_ready:
                try:
                    if requests.get(spec.http_ready, timeout=1).status_code == 200:
                        pending.remove(spec)
                except requests.RequestException:
                    pass
            elif spec.grpc_ready and check_health(spec.grpc_ready, 0.5):
                pending.remove(spec)
        if pending and time.monotonic() > deadline:
            raise RuntimeError("not ready in time: " + ", ".join(s.name for s in pending))
        time.sleep(0.1)


def stop(processes: dict[str, subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    for process in processes.values():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(url: str) -> bool:
    import redis

    from services.common.redis_conn import connect

    try:
        return bool(connect(url).ping())
    except redis.RedisError:
        return False


def run_all(env: Env, *, seed: bool = True) -> int:
    from services import migrate
    from services import seed as demo_seed

    child_env = dict(env)
    var = var_dir(env)
    child_env["PC_VAR_DIR"] = str(var)
    child_env.setdefault("AUTH_WEB_WORKERS", LOCAL_WEB_WORKERS)
    child_env.setdefault("PORTAL_WEB_WORKERS", LOCAL_WEB_WORKERS)
    began = time.monotonic()
    embedded_pid = None
    if not get(env, "REDIS_URL"):
        already_running = (var / "redis.sock").exists() and _answers(embedded_url(var))
        child_env["REDIS_URL"] = ensure_embedded(var)
        if not already_running:
            embedded_pid = int((var / "redis.pid").read_text())
        print(f"Redis: embedded server at {child_env['REDIS_URL']}")
    for service in migrate.SERVICES:
        migrate.upgrade(service, child_env)
    if seed:
        demo_seed.seed_demo(child_env)
    specs = process_specs(child_env)
    processes = start(specs, child_env)
    stopping = False

    def _on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    parent = os.getppid()
    try:
        wait_ready(specs, processes, READY_TIMEOUT_S)
        addr = addresses(child_env)
        print(
            f"\nProvider Center is ready in {time.monotonic() - began:.1f} s.\n"
            f"  Open {addr['portal_url']} and sign in as demo.admin / Sunny-Molar-Ledger-42\n"
            "  The verification code comes from an authenticator app holding the TOTP secret\n"
            "  MR2LT7Q67FZYZNRWDNBDPJADOXVTO6TL (or: providerctl auth totp-code demo.admin).\n"
            f"  Mail is written to {var / 'mail'}.\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            if os.getppid() != parent:
                # Whoever started us (make, a terminal) is gone: nobody is left to press Ctrl-C.
                print("parent process gone; stopping", flush=True)
                stopping = True
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with status {process.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
        return 0
    except RuntimeError as exc:
        print(f"providerctl run: {exc}", file=sys.stderr)
        return 1
    finally:
        print("Stopping…", flush=True)
        stop(processes)
        if embedded_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(embedded_pid, signal.SIGTERM)
