"""Prometheus metrics: the shared HTTP and gRPC ones, and how each process exposes them.

- The web processes (gunicorn, several workers) run ``prometheus_client`` in
  multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set, emptied and later
  removed by ``services/common/gunicorn_conf.py`` before any worker imports
  this module, every worker writes its values there, and ``/metrics`` on any
  worker sums them (a dead worker's counters stay counted; its live gauges go).
- The other processes (the gRPC servers, auth's relay, notify's worker) serve
  ``/metrics`` and ``/healthz`` on a small HTTP port of their own
  (``serve_http``), when their ``*_METRICS_BIND`` is set.

Collectors that measure something outside the process (an outbox's depth) are
queried at scrape time: pass them as ``collectors``.

Label values are always from small fixed sets (route patterns, status codes,
event names, reasons), never user input.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# The *_created series double every counter's output and no dashboard here uses them.
disable_created_metrics()

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
# Where the processes without a web server serve both, in the deployments (HOST:9090).
METRICS_PORT = 9090
# Latency buckets from 5 ms to 10 s: page views, argon2 sign-ins and slow outliers.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route pattern and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from receiving an HTTP request to returning its response, by method and route pattern.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being handled right now (all workers).",
    multiprocess_mode="livesum",
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "gRPC calls completed, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle a gRPC call, by service and method.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
GRPC_IN_FLIGHT = Gauge(
    "grpc_server_calls_in_flight",
    "gRPC calls being handled right now.",
    multiprocess_mode="livesum",
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(collectors: Iterable[Collector] = ()) -> bytes:
    """The text format of every metric of this process (or process tree) plus ``collectors``."""
    extra = list(collectors)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in extra:
            registry.register(collector)
        return generate_latest(registry)
    output = generate_latest(REGISTRY)
    if extra:
        registry = CollectorRegistry()
        for collector in extra:
            registry.register(collector)
        output += generate_latest(registry)
    return output


# ---- HTTP apps (WSGI) ------------------------------------------------------------------------

ROUTE_KEY = "pc.route"


class WsgiMetrics:
    """WSGI middleware: counts and times every request, and answers ``GET /metrics``.

    The route label is the matched URL rule, which the Flask app stores in the
    environ under ``pc.route`` (``services/common/web.py``); requests that
    matched no rule are ``unmatched``. ``/metrics`` is answered here, before the
    app (so neither sign-in nor maintenance mode gets in its way), and only
    when ``allowed(environ)`` — behind an ingress it is for the cluster's
    Prometheus, not for the internet.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        allowed: Callable[[dict[str, Any]], bool] = lambda _environ: True,
        collectors: Iterable[Collector] = (),
    ) -> None:
        self.app = app
        self.allowed = allowed
        self.collectors = list(collectors)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH and environ.get("REQUEST_METHOD") in {"GET", "HEAD"}:
            return self._metrics(environ, start_response)
        started = time.perf_counter()
        status: list[str] = ["500"]

        def _start_response(status_line: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        HTTP_IN_FLIGHT.inc()
        try:
            result = self.app(environ, _start_response)
        except BaseException:
            self._record(environ, "500", started)
            raise
        return _Closing(result, lambda: self._record(environ, status[0], started))

    def _record(self, environ: dict[str, Any], status: str, started: float) -> None:
        HTTP_IN_FLIGHT.dec()
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in _METHODS else "other"
        route = environ.get(ROUTE_KEY) or "unmatched"
        HTTP_REQUESTS.labels(method, route, status).inc()
        HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)

    def _metrics(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.allowed(environ):
            start_response("404 NOT FOUND", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"not found"]
        try:
            body = exposition(self.collectors)
        except Exception:
            log.exception("metrics exposition failed")
            start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")])
            return [b"metrics unavailable"]
        start_response(
            "200 OK",
            [
                ("Content-Type", CONTENT_TYPE_LATEST),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


class _Closing:
    """Runs ``on_close`` once when the server is done with the response body."""

    def __init__(self, iterable: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._iterable = iterable
        self._on_close = on_close
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


# ---- processes without a web server of their own -------------------------------------------


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {bind!r}")
    return host.strip("[]"), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _MetricsServer

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if path == METRICS_PATH:
            try:
                body, status, kind = exposition(self.server.collectors), 200, CONTENT_TYPE_LATEST
            except Exception:
                log.exception("metrics exposition failed")
                body, status, kind = b"metrics unavailable", 500, "text/plain"
        elif path == HEALTH_PATH:
            problem = self.server.health()
            status = 200 if problem is None else 503
            answer = {"status": "ok" if problem is None else "failing", "service": self.server.service}
            if problem:
                answer["reason"] = problem
            body, kind = json.dumps(answer).encode(), "application/json"
        else:
            body, status, kind = b"not found", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass  # probes and scrapes every few seconds would drown the process's own lines


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        service: str,
        health: Callable[[], str | None],
        collectors: list[Collector],
    ) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.health = health
        self.collectors = collectors


def serve_http(
    bind: str | None,
    service: str,
    *,
    health: Callable[[], str | None] = lambda: None,
    collectors: Iterable[Collector] = (),
) -> _MetricsServer | None:
    """Serve ``/metrics`` and ``/healthz`` on ``bind`` (HOST:PORT) in a background thread.

    ``health`` returns None while the process is healthy, else a short reason
    (``/healthz`` then answers 503, and Kubernetes restarts the container).
    Nothing is served when ``bind`` is empty. Call ``shutdown()`` on the result to stop.
    """
    if not bind:
        return None
    server = _MetricsServer(parse_bind(bind), service, health, list(collectors))
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("metrics listening", extra={"address": f"{bind.rpartition(':')[0]}:{server.server_address[1]}"})
    return server


class Heartbeat:
    """A loop's sign of life for ``/healthz``: stale when the loop has not beaten for ``max_age_s``."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def problem(self) -> str | None:
        age = self._clock() - self._last
        return None if age <= self.max_age_s else f"loop stalled for {age:.0f} s"
