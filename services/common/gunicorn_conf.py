"""gunicorn's configuration for auth web and portal web (``gunicorn --config
python:services.common.gunicorn_conf``), read from the environment.

``PC_WEB_SERVICE`` (``auth`` or ``portal``; set by ``providerctl … web``) picks
the service; ``P`` below is ``AUTH`` or ``PORTAL``.

| variable | default | meaning |
|---|---|---|
| ``P_HTTP_BIND`` | ``127.0.0.1:8001`` / ``:8000`` | where to listen |
| ``P_WEB_WORKERS`` | 2 × CPUs + 1 (the container's CPU limit) | worker processes |
| ``WEB_THREADS`` | ``4`` | threads per worker (gthread) |
| ``WEB_GRACEFUL_TIMEOUT_S`` | ``20`` | after SIGTERM, how long requests in flight may take |
| ``WEB_TIMEOUT_S`` | ``30`` | a worker silent this long is restarted |
| ``WEB_KEEPALIVE_S`` | ``5`` | seconds an idle keep-alive connection is kept |
| ``FORWARDED_ALLOW_IPS`` | ``127.0.0.1`` | proxies trusted for ``X-Forwarded-Proto`` (ingress: ``*``) |
| ``WEB_ACCESS_LOG`` | ``false`` | gunicorn's access lines too (JSON); the app logs one per request |

Every line gunicorn writes is JSON (``JsonLogger``). Metrics: the master
prepares ``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory of its own, or the one
named, emptied) before any worker starts, tells prometheus_client when a worker
exits, and removes a directory it made when it stops.
"""

from __future__ import annotations

# Module-level names that are gunicorn settings (bind, workers…) configure it; every other
# name here starts with an underscore or is one gunicorn does not know.
import logging as _logging
import os
import shutil
import sys
import tempfile
import time as _time
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from services.common import config as _config
from services.common.logs import JsonFormatter, TraceFilter
from services.common.webserver import APPS, SERVICE_ENV, default_workers

_DEFAULT_BINDS = {"auth": "127.0.0.1:8001", "portal": "127.0.0.1:8000"}
_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
# Set once per master: a configuration reload (SIGHUP) must not empty the directory again.
_PREPARED = "PC_METRICS_DIR_PREPARED"


def _service() -> str:
    named = os.environ.get(SERVICE_ENV, "")
    if named in APPS:
        return named
    for candidate, app in APPS.items():
        if app in sys.argv:
            return candidate
    raise RuntimeError(f"{SERVICE_ENV} must be auth or portal (got {named!r})")


service = _service()
_prefix = service.upper()
_env = os.environ

bind = [_config.get_str(_env, f"{_prefix}_HTTP_BIND", _DEFAULT_BINDS[service])]
workers = _config.get_int(_env, f"{_prefix}_WEB_WORKERS", default_workers(), minimum=1)
worker_class = "gthread"
threads = _config.get_int(_env, "WEB_THREADS", 4, minimum=1)
graceful_timeout = _config.get_int(_env, "WEB_GRACEFUL_TIMEOUT_S", 20, minimum=0)
timeout = _config.get_int(_env, "WEB_TIMEOUT_S", 30, minimum=1)
keepalive = _config.get_int(_env, "WEB_KEEPALIVE_S", 5, minimum=0)
forwarded_allow_ips = _config.get_str(_env, "FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-" if _config.get_bool(_env, "WEB_ACCESS_LOG", False) else None
errorlog = "-"
loglevel = "info"
proc_name = f"providercenter-{service}-web"
# The app is imported by each worker after the fork (its own connections; metrics in the
# multiprocess directory set up below, before prometheus_client is first imported).
preload_app = False


def _prepare_metrics_dir() -> tuple[Path, bool]:
    """The multiprocess directory, empty, in the environment the workers inherit."""
    named = _env.get(_MULTIPROC)
    if _env.get(_PREPARED) == str(os.getpid()) and named:
        return Path(named), _env.get("PC_METRICS_DIR_OWNED") == "1"
    if named:
        path, owned = Path(named), False
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path, owned = Path(tempfile.mkdtemp(prefix=f"pc-metrics-{service}-")), True
        os.environ[_MULTIPROC] = str(path)
    os.environ[_PREPARED] = str(os.getpid())
    os.environ["PC_METRICS_DIR_OWNED"] = "1" if owned else "0"
    return path, owned


_metrics_dir, _metrics_dir_owned = _prepare_metrics_dir()

# Imported here, in the master at start (after the multiprocess directory is set, which
# prometheus_client reads at import), never inside child_exit: that hook runs from the
# SIGCHLD handler, and a second signal arriving mid-import left a half-initialised module
# (ImportError at shutdown, seen under load in CI).
from prometheus_client import multiprocess as _prometheus_multiprocess  # noqa: E402


def child_exit(_server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges (requests in flight) stop counting; its counters stay."""
    _prometheus_multiprocess.mark_process_dead(worker.pid)


def on_exit(_server: Any) -> None:
    if _metrics_dir_owned:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


class JsonLogger(Logger):
    """gunicorn's logger, writing the same JSON lines as the app.

    Access lines (when ``WEB_ACCESS_LOG`` is on) carry the method, the path
    without its query string (which may hold a one-time token), the status, the
    duration and the request id the app answered with.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for target in (self.error_log, self.access_log):
            for handler in target.handlers:
                handler.setFormatter(JsonFormatter(service))
                handler.addFilter(TraceFilter())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        headers = {str(name).lower(): value for name, value in (resp.headers or [])}
        seconds = request_time.total_seconds() if hasattr(request_time, "total_seconds") else 0.0
        try:
            self.access_log.info(
                "access",
                extra={
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO", "")[:300],
                    "status": getattr(resp, "status_code", None),
                    "bytes": getattr(resp, "sent", None),
                    "duration_ms": round(seconds * 1000, 2),
                    "request_id": headers.get("x-request-id"),
                    "remote_addr": environ.get("REMOTE_ADDR"),
                    "user_agent": (environ.get("HTTP_USER_AGENT") or "")[:200],
                },
            )
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            self.error_log.exception("failed to write the access log line")


logger_class = JsonLogger
_logging.Formatter.converter = _time.gmtime
