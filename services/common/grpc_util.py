"""gRPC plumbing shared by the servers and clients: health, deadlines, shutdown,
and what every call gets on the server: its trace (``x-request-id`` and
``traceparent`` metadata), one JSON log line with its outcome and duration, and
the ``grpc_server_*`` metrics.

Every server registers the standard ``grpc.health.v1.Health`` service; every
client call passes a deadline (gRPC sets none by default).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common import tracing

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 * 1024 * 1024
# How long in-flight calls get to finish after SIGTERM (GRPC_GRACE_S overrides).
GRACE_S = 10.0
HEALTH_SERVICE = "grpc.health.v1.Health"

Registrar = Callable[[grpc.Server], None]


def grace_s() -> float:
    try:
        return max(0.0, float(os.environ.get("GRPC_GRACE_S", "") or GRACE_S))
    except ValueError:
        return GRACE_S


class ObservingInterceptor(grpc.ServerInterceptor):
    """Each unary call runs in its caller's trace and leaves one log line and its metrics.

    Health checks are counted but not logged (probes would drown everything else).
    """

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        full_method = handler_call_details.method or ""
        service, _, method = full_method.lstrip("/").rpartition("/")
        metadata = handler_call_details.invocation_metadata
        inner = handler.unary_unary

        def observed(request, context):  # type: ignore[no-untyped-def]
            from services.common import metrics

            trace = tracing.from_metadata(metadata)
            token = tracing.begin(trace)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            metrics.GRPC_IN_FLIGHT.inc()
            try:
                response = inner(request, context)
                code = _code_of(context) or grpc.StatusCode.OK
                return response
            except BaseException:
                code = _code_of(context) or grpc.StatusCode.UNKNOWN
                raise
            finally:
                elapsed = time.perf_counter() - started
                metrics.GRPC_IN_FLIGHT.dec()
                metrics.GRPC_HANDLED.labels(service, method, code.name).inc()
                metrics.GRPC_LATENCY.labels(service, method).observe(elapsed)
                if service != HEALTH_SERVICE:
                    log.info(
                        "grpc call",
                        extra={
                            "grpc_service": service,
                            "grpc_method": method,
                            "grpc_code": code.name,
                            "duration_ms": round(elapsed * 1000, 2),
                            "request_id": trace.request_id,
                            "trace_id": trace.trace_id,
                        },
                    )
                tracing.end(token)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _code_of(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The status the handler set (``abort`` and ``set_code`` both do), if any."""
    code = getattr(context, "code", None)
    try:
        value = code() if callable(code) else None
    except Exception:  # noqa: BLE001 - older grpcio: no code() on the server context
        return None
    return value if isinstance(value, grpc.StatusCode) else None


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
        interceptors=[ObservingInterceptor(), *interceptors],
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
    server: grpc.Server,
    health_servicer: health.HealthServicer,
    name: str,
    port: int,
    *,
    metrics_bind: str | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then stop taking work and let in-flight calls finish.

    On the signal the health service answers NOT_SERVING, new calls are refused
    and calls in flight get ``GRPC_GRACE_S`` (10 s) to finish. With
    ``metrics_bind`` (HOST:PORT), ``/metrics`` and ``/healthz`` are served there.
    """
    from services.common import metrics

    stop = threading.Event()

    def _handle(signum: int, _frame: object) -> None:
        log.info("signal received, draining", extra={"signal": signum, "service": name})
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    exporter = metrics.serve_http(metrics_bind, name)
    server.start()
    log.info("gRPC server listening", extra={"service": name, "port": port})
    # Wait with a timeout: a signal the kernel hands to one of gRPC's threads only sets a
    # flag, and Python runs the handler when the main thread next wakes; an untimed wait
    # would never wake, and SIGTERM would be ignored until SIGKILL.
    while not stop.wait(0.2):
        pass
    health_servicer.enter_graceful_shutdown()
    grace = grace_s()
    server.stop(grace).wait(grace + 5)
    if exporter is not None:
        exporter.shutdown()
    log.info("gRPC server stopped", extra={"service": name})


def channel(address: str) -> grpc.Channel:
    """A channel to ``address``; wrap it with ``tracing.propagating`` to send the trace along."""
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
            response = health_pb2_grpc.HealthStub(tracing.propagating(chan)).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING
