"""gRPC plumbing shared by the servers and clients: health, deadlines, shutdown.

Every server registers the standard ``grpc.health.v1.Health`` service; every
client call passes a deadline (gRPC sets none by default).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 * 1024 * 1024
# How long in-flight calls get to finish after SIGTERM.
GRACE_S = 10.0

Registrar = Callable[[grpc.Server], None]


def build_server(
    registrars: Iterable[Registrar],
    service_names: Iterable[str],
    address: str,
    *,
    max_workers: int = 16,
    interceptors: Iterable[grpc.ServerInterceptor] = (),
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A server with our services and the health service, bound to ``address``.

    Returns the server, the bound port (``address`` may end in ``:0``) and the
    health servicer so the caller can flip statuses on shutdown.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=list(interceptors),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    for register in registrars:
        register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in [*service_names, ""]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC server to {address}")
    return server, port, health_servicer


def serve_until_signalled(
    server: grpc.Server, health_servicer: health.HealthServicer, name: str, port: int
) -> None:
    """Run until SIGTERM/SIGINT, then stop taking work and let in-flight calls finish."""
    stop = threading.Event()

    def _handle(signum: int, _frame: object) -> None:
        log.info("signal received, draining", extra={"signal": signum, "service": name})
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    server.start()
    log.info("gRPC server listening", extra={"service": name, "port": port})
    stop.wait()
    health_servicer.enter_graceful_shutdown()
    server.stop(GRACE_S).wait()
    log.info("gRPC server stopped", extra={"service": name})


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 0),
        ],
    )


def check_health(address: str, timeout_s: float = 1.0, service: str = "") -> bool:
    """True when the server at ``address`` reports SERVING."""
    with channel(address) as chan:
        try:
            response = health_pb2_grpc.HealthStub(chan).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING
