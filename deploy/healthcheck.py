"""The image's health check: is the process in this container serving?

    python /app/deploy/healthcheck.py [TARGET]

TARGET (or ``$PC_HEALTHCHECK``) is one of
  ``http://HOST:PORT/PATH``  healthy when it answers 200 within the timeout;
  ``grpc://HOST:PORT``       healthy when the standard gRPC health service says SERVING;
  ``none``                   healthy while running (one-shot commands; the relay and the worker
                             without a metrics port).
Without either, the target follows from the command the container runs
(``/proc/1/cmdline``) and the same variables the process binds with, so the
image's one ``HEALTHCHECK`` suits every ``providerctl`` command: the relay and the
worker are checked at ``/healthz`` on their metrics port when one is set
(``AUTH_RELAY_METRICS_BIND``, ``NOTIFY_WORKER_METRICS_BIND``).

Exit status 0 when healthy, 1 when not (what Docker's HEALTHCHECK expects).
Kubernetes does not use this: its probes call /healthz, /readyz and gRPC health directly.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

TIMEOUT_S = 3.0


def _port(bind: str) -> str:
    return bind.rsplit(":", 1)[-1]


def _follows(argv: Sequence[str], *words: str) -> bool:
    """True when ``words`` appear consecutively in ``argv``."""
    n = len(words)
    return any(tuple(argv[i : i + n]) == words for i in range(len(argv) - n + 1))


def infer_target(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The health target of the process started as ``argv`` (``providerctl auth web`` execs gunicorn)."""
    if "services.auth.web.wsgi:app" in argv or _follows(argv, "auth", "web"):
        return f"http://127.0.0.1:{_port(env.get('AUTH_HTTP_BIND') or '127.0.0.1:8001')}/healthz"
    if "services.portal.web.wsgi:app" in argv or _follows(argv, "portal", "web"):
        return f"http://127.0.0.1:{_port(env.get('PORTAL_HTTP_BIND') or '127.0.0.1:8000')}/healthz"
    if _follows(argv, "auth", "grpc"):
        return f"grpc://127.0.0.1:{_port(env.get('AUTH_GRPC_ADDR') or '127.0.0.1:50051')}"
    if _follows(argv, "notify", "server"):
        return f"grpc://127.0.0.1:{_port(env.get('NOTIFY_GRPC_ADDR') or '127.0.0.1:50052')}"
    metrics_ports = (
        (("auth", "relay"), "AUTH_RELAY_METRICS_BIND"),
        (("notify", "worker"), "NOTIFY_WORKER_METRICS_BIND"),
    )
    for words, variable in metrics_ports:
        if _follows(argv, *words) and env.get(variable):
            return f"http://127.0.0.1:{_port(env[variable])}/healthz"
    return "none"


def check_http(url: str, timeout_s: float = TIMEOUT_S) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) only, checked
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def check_grpc(address: str, timeout_s: float = TIMEOUT_S) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def check(target: str, timeout_s: float = TIMEOUT_S) -> bool:
    if target == "none":
        return True
    if target.startswith(("http://", "https://")):
        return check_http(target, timeout_s)
    if target.startswith("grpc://"):
        return check_grpc(target.removeprefix("grpc://"), timeout_s)
    raise ValueError(f"unknown health target {target!r} (http://…, grpc://host:port or none)")


def _pid1_argv() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def main(argv: Sequence[str]) -> int:
    target = (argv[0] if argv else "") or os.environ.get("PC_HEALTHCHECK") or ""
    if not target:
        target = infer_target(_pid1_argv(), os.environ)
    try:
        healthy = check(target)
    except ValueError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"healthcheck: {target} is not healthy", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
