"""deploy/healthcheck.py, the image's HEALTHCHECK: which target it picks for each
command, and its verdicts against real HTTP and gRPC servers."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest
from grpc_health.v1 import health_pb2

from services.common.grpc_util import build_server
from tests.deploy.support import DEPLOY
from tests.support.infra import free_port


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pc_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


healthcheck = _load()
VENV_PY = "/app/.venv/bin/python"
PROVIDERCTL = [VENV_PY, "/app/.venv/bin/providerctl"]


@pytest.mark.parametrize(
    ("argv", "env", "target"),
    [
        # providerctl auth web execs gunicorn, so PID 1's command line is gunicorn's.
        (
            [VENV_PY, "-m", "gunicorn", "--bind", "0.0.0.0:8001", "services.auth.web.wsgi:app"],
            {"AUTH_HTTP_BIND": "0.0.0.0:8001"},
            "http://127.0.0.1:8001/healthz",
        ),
        (
            [*PROVIDERCTL, "portal", "web"],
            {"PORTAL_HTTP_BIND": "0.0.0.0:9000"},
            "http://127.0.0.1:9000/healthz",
        ),
        ([VENV_PY, "-m", "gunicorn", "services.portal.web.wsgi:app"], {}, "http://127.0.0.1:8000/healthz"),
        ([*PROVIDERCTL, "auth", "grpc"], {"AUTH_GRPC_ADDR": "0.0.0.0:50051"}, "grpc://127.0.0.1:50051"),
        ([*PROVIDERCTL, "notify", "server"], {}, "grpc://127.0.0.1:50052"),
        ([*PROVIDERCTL, "auth", "relay"], {}, "none"),
        ([*PROVIDERCTL, "notify", "worker"], {}, "none"),
        # With a metrics port, the relay and the worker answer /healthz (their loop is turning).
        ([*PROVIDERCTL, "auth", "relay"], {"AUTH_RELAY_METRICS_BIND": "0.0.0.0:9090"}, "http://127.0.0.1:9090/healthz"),
        (
            [*PROVIDERCTL, "notify", "worker"],
            {"NOTIFY_WORKER_METRICS_BIND": "0.0.0.0:9191"},
            "http://127.0.0.1:9191/healthz",
        ),
        ([*PROVIDERCTL, "db", "upgrade"], {}, "none"),
        ([], {}, "none"),
    ],
)
def test_the_target_follows_from_the_command(argv: list[str], env: dict[str, str], target: str) -> None:
    assert healthcheck.infer_target(argv, env) == target


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        status = 200 if self.path == "/healthz" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_healthy_only_on_200(http_server: int) -> None:
    assert healthcheck.main([f"http://127.0.0.1:{http_server}/healthz"]) == 0
    assert healthcheck.main([f"http://127.0.0.1:{http_server}/readyz"]) == 1  # 503
    assert healthcheck.main([f"http://127.0.0.1:{free_port()}/healthz"]) == 1  # nothing listening


def test_grpc_healthy_only_while_serving() -> None:
    port = free_port()
    server, _port, health = build_server([], [], f"127.0.0.1:{port}")
    server.start()
    try:
        assert healthcheck.main([f"grpc://127.0.0.1:{port}"]) == 0
        health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert healthcheck.main([f"grpc://127.0.0.1:{port}"]) == 1
    finally:
        server.stop(0).wait()
    assert healthcheck.main([f"grpc://127.0.0.1:{port}"]) == 1


def test_the_environment_names_a_target_and_nonsense_is_unhealthy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PC_HEALTHCHECK", "none")
    assert healthcheck.main([]) == 0
    assert healthcheck.main(["ftp://example.test/"]) == 1
