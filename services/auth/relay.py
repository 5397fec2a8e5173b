"""The outbox relay: hands auth's outbox rows to notify, with the row id as
the idempotency key, until notify has accepted each one.

A notify outage or restart, or a relay restart, loses nothing: a row stays
until notify answers for it, and a repeat is harmless (same key, same message).

Each send continues the trace of the request that wrote the row (its request
id and traceparent go to notify as gRPC metadata). With
``AUTH_RELAY_METRICS_BIND`` set, ``/metrics`` (with the outbox's depth) and
``/healthz`` (the loop is turning) are served there.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from datetime import timedelta

from sqlalchemy import select

from services.auth.bootstrap import Container
from services.auth.metrics import OutboxCollector
from services.auth.store.models import OutboxMessage
from services.common import config, tracing
from services.common.db import transaction, utcnow
from services.common.metrics import Heartbeat, serve_http
from services.common.notify_client import NotifyClient, NotifyRejected, NotifyUnavailable

log = logging.getLogger(__name__)

BATCH = 50
MAX_BACKOFF_S = 60
# /healthz fails when a pass has not finished for this long (a pass sends at most
# BATCH rows, each with notify's 2 s deadline, and stops at the first outage).
STALL_S = 180.0


def relay_once(container: Container, client: NotifyClient) -> int:
    """Relay the due rows; returns how many notify accepted.

    No transaction is held while notify is called (a slow notify must not
    block sign-ins writing to the same database). Two relays may send the
    same row; the idempotency key makes that one message.
    """
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.relayed_at.is_(None), OutboxMessage.next_attempt_at <= utcnow())
        .order_by(OutboxMessage.created_at)
        .limit(BATCH)
    )
    with container.db() as db:
        due = [
            (row.id, row.template, row.to, dict(row.params), row.request_id, row.traceparent)
            for row in db.scalars(query)
        ]
    accepted = 0
    for row_id, template, to, params, request_id, traceparent in due:
        # Continue the trace of the request that wrote the row: notify's log lines carry its ids.
        with tracing.continued(request_id, traceparent):
            outcome = _relay_row(container, client, row_id, template, to, params)
        if outcome is None:
            # Notify is down: the rest of the batch would fail the same way.
            break
        accepted += int(outcome)
    return accepted


def _relay_row(
    container: Container, client: NotifyClient, row_id: str, template: str, to: str, params: dict
) -> bool | None:
    """Send one row: True when notify took it, False when it refused it for good, None when down."""
    try:
        result = client.send(idempotency_key=f"auth-outbox-{row_id}", template=template, to=to, params=params)
    except NotifyUnavailable as exc:
        _update(container, row_id, error=str(exc), delay_s=None)
        log.warning("notify unavailable; outbox message waits", extra={"outbox_id": row_id})
        return None
    except NotifyRejected as exc:
        # A message notify will never take (a bug, not an outage): park it for ops.
        log.error("notify rejected an outbox message", extra={"outbox_id": row_id, "error": str(exc)})
        _update(container, row_id, error=f"rejected: {exc}", delay_s=3650 * 86400)
        return False
    with transaction(container.db) as db:
        row = db.get(OutboxMessage, row_id)
        if row is not None:
            row.attempts += 1
            row.relayed_at = utcnow()
            row.notify_message_id = result.message_id
            row.last_error = None
    log.info(
        "outbox message relayed",
        extra={"outbox_id": row_id, "template": template, "message_id": result.message_id},
    )
    return True


def _update(container: Container, row_id: str, *, error: str, delay_s: float | None) -> None:
    with transaction(container.db) as db:
        row = db.get(OutboxMessage, row_id)
        if row is None:
            return
        row.attempts += 1
        row.last_error = error[:500]
        delay = delay_s if delay_s is not None else _backoff(row.attempts)
        row.next_attempt_at = utcnow() + timedelta(seconds=delay)


def _backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 2 ** min(attempts, 10)) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter


def run(container: Container, poll_s: float = 0.5) -> None:
    import os

    client = NotifyClient(container.settings.notify_addr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    heartbeat = Heartbeat(STALL_S)
    exporter = serve_http(
        config.get(os.environ, "AUTH_RELAY_METRICS_BIND"),
        "auth-relay",
        health=heartbeat.problem,
        collectors=[OutboxCollector(container.db)],
    )
    log.info("outbox relay started", extra={"notify": container.settings.notify_addr})
    while not stop.is_set():
        try:
            relayed = relay_once(container, client)
        except Exception:  # noqa: BLE001 - a database blip must not end the relay
            log.exception("outbox relay pass failed")
            relayed = 0
        heartbeat.beat()
        if relayed < BATCH:
            stop.wait(poll_s)
    if exporter is not None:
        exporter.shutdown()
    log.info("outbox relay stopped")
