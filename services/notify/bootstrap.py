"""The notify service's composition root: the one place that picks the database,
the transport and the clock, and starts the two processes (gRPC server, worker).

Nothing connects at import time; tests build the same objects from their own
``Settings``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services import migrate
from services.common import db
from services.common.grpc_util import build_server, serve_until_signalled
from services.common.metrics import Heartbeat, serve_http
from services.notify.delivery_queue import DeliveryQueue
from services.notify.grpc_server import SERVICE_NAME, registrar
from services.notify.metrics import OutboxCollector
from services.notify.outbox import Outbox
from services.notify.rendering import Renderer
from services.notify.settings import Settings
from services.notify.transports import FileTransport, SmtpTransport, Transport, parse_smtp_url
from services.notify.worker import DB_ERROR_WAIT_S, DeliveryWorker, RetryPolicy, new_worker_id

log = logging.getLogger(__name__)

# Any constant will do; it only has to be the same for every notify process.
_MIGRATION_LOCK_ID = 0x6E6F74696679  # "notify"
# How often the server checks its database for the health service.
HEALTH_CHECK_S = 5.0


def build_engine(settings: Settings) -> Engine:
    return db.make_engine(settings.database_url)


def build_sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Serialise migrations when several notify processes start at once.

    PostgreSQL: a session advisory lock (two concurrent ``CREATE TABLE`` would
    otherwise fail). SQLite: an exclusive lock on a file beside the database.
    """
    if url.startswith("sqlite"):
        database = make_url(url).database
        if not database or database == ":memory:":
            yield
            return
        lock_path = Path(database).with_suffix(".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
                conn.commit()
    finally:
        engine.dispose()


def ensure_schema(settings: Settings) -> None:
    """Bring the outbox database to the newest revision (safe with concurrent callers)."""
    with _migration_lock(settings.database_url):
        db.upgrade(settings.database_url, migrate.migrations_dir("notify"))


def build_outbox(settings: Settings, engine: Engine) -> Outbox:
    return Outbox(build_sessions(engine), Renderer())


def build_transport(settings: Settings) -> Transport:
    """SMTP when ``NOTIFY_SMTP_URL`` is set, otherwise ``.eml`` files in the mail directory."""
    if settings.smtp_url:
        return SmtpTransport(
            parse_smtp_url(settings.smtp_url), settings.mail_from, timeout_s=settings.smtp_timeout_s
        )
    return FileTransport(settings.mail_dir, settings.mail_from)


def build_worker(
    settings: Settings,
    engine: Engine,
    *,
    transport: Transport | None = None,
    worker_id: str | None = None,
) -> DeliveryWorker:
    queue = DeliveryQueue(build_sessions(engine), worker_id or new_worker_id(), lease_s=settings.lease_s)
    policy = RetryPolicy(
        max_attempts=settings.max_attempts,
        backoff_base_s=settings.backoff_base_s,
        backoff_cap_s=settings.backoff_cap_s,
    )
    return DeliveryWorker(
        queue,
        transport or build_transport(settings),
        policy,
        batch_size=settings.batch_size,
        poll_s=settings.poll_s,
    )


@dataclass
class RunningServer:
    """A started (or startable) gRPC server and what it needs to be stopped cleanly."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    engine: Engine

    def stop(self, grace_s: float = 1.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        self.engine.dispose()


def build_grpc_server(settings: Settings, address: str | None = None) -> RunningServer:
    """NotifyService plus the health service, bound but not started (``address`` may end in ``:0``)."""
    engine = build_engine(settings)
    outbox = build_outbox(settings, engine)
    server, port, health_servicer = build_server(
        [registrar(outbox)], [SERVICE_NAME], address or settings.grpc_addr
    )
    return RunningServer(server, port, health_servicer, engine)


def _watch_database(running: RunningServer, stop: threading.Event) -> None:
    """Report NOT_SERVING while the database is unreachable, so load balancers look elsewhere."""
    serving = True
    while not stop.wait(HEALTH_CHECK_S):
        try:
            db.ping(running.engine)
            ok = True
        except Exception:
            ok = False
        if ok != serving:
            serving = ok
            status = (
                health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in (SERVICE_NAME, ""):
                running.health.set(name, status)
            log.warning("database health changed", extra={"serving": ok})


def _migrate_at_start(settings: Settings) -> bool:
    """Migrate if configured to; False (after one clear log line) if the database is unusable."""
    if not settings.migrate_on_start:
        return True
    try:
        ensure_schema(settings)
    except SQLAlchemyError as exc:
        log.error(
            "cannot migrate the outbox database",
            extra={"error": f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"[:300]},
        )
        return False
    return True


def run_server(settings: Settings) -> int:
    """The ``notify server`` process: serve until SIGTERM/SIGINT, then drain."""
    if not _migrate_at_start(settings):
        return 1
    running = build_grpc_server(settings)
    stop_watch = threading.Event()
    watcher = threading.Thread(target=_watch_database, args=(running, stop_watch), daemon=True)
    watcher.start()
    try:
        serve_until_signalled(
            running.server, running.health, "notify", running.port, metrics_bind=settings.grpc_metrics_bind
        )
    finally:
        stop_watch.set()
        running.engine.dispose()
    return 0


def run_worker(settings: Settings) -> int:
    """The ``notify worker`` process: deliver until SIGTERM/SIGINT, then release and exit."""
    if not _migrate_at_start(settings):
        return 1
    engine = build_engine(settings)
    worker = build_worker(settings, engine)
    # /healthz fails when the loop stalls: one message takes at most about a lease.
    heartbeat = Heartbeat(2 * settings.lease_s + 10 * settings.poll_s + DB_ERROR_WAIT_S)
    worker.heartbeat = heartbeat.beat
    exporter = serve_http(
        settings.worker_metrics_bind,
        "notify-worker",
        health=heartbeat.problem,
        collectors=[OutboxCollector(build_sessions(engine))],
    )
    stop = threading.Event()

    def _handle(signum: int, _frame: object) -> None:
        # Only set a flag: the message being sent is finished, the rest released, by run().
        log.info("signal received, stopping after the current message", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    try:
        worker.run(stop)
    finally:
        if exporter is not None:
            exporter.shutdown()
        engine.dispose()
    return 0
