"""The delivery worker: claim due messages, send each through the transport,
settle the outcome, and on SIGTERM hand back what it has not started.

Several workers may run against one outbox (see ``delivery_queue``). Every
loop here is bounded: the main loop by the stop event, each batch by its size,
each wait by the poll interval.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from services.common import tracing
from services.notify import metrics
from services.notify.backoff import backoff_delay
from services.notify.delivery_queue import DeliveryQueue, StartedAttempt
from services.notify.transports import Transport, TransportError

log = logging.getLogger(__name__)

# After a database error, wait this long (at most) before trying again.
DB_ERROR_WAIT_S = 5.0


def new_worker_id() -> str:
    """Unique per process start: a restarted worker must not think it owns its predecessor's leases."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a message is tried."""

    max_attempts: int = 8
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 900.0

    def delay_for(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        return backoff_delay(failures, self.backoff_base_s, self.backoff_cap_s, rand)


class DeliveryWorker:
    """One worker process's loop over the outbox."""

    def __init__(
        self,
        queue: DeliveryQueue,
        transport: Transport,
        policy: RetryPolicy,
        *,
        batch_size: int = 10,
        poll_s: float = 0.5,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.queue = queue
        self.transport = transport
        self.policy = policy
        self.batch_size = batch_size
        self.poll_s = poll_s
        # Called as the loop turns and after each message: /healthz tells a stalled worker.
        self.heartbeat = heartbeat

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; then release any claimed message not yet started."""
        log.info(
            "delivery worker started",
            extra={"worker": self.queue.worker_id, "transport": self.transport.name},
        )
        error_wait = self.poll_s
        while not stop.is_set():
            self.heartbeat()
            try:
                claimed = self.run_once(stop)
                error_wait = self.poll_s
            except SQLAlchemyError as exc:
                # The database is down or flaky: wait (a little longer each time) and try again.
                # Claimed messages stay leased and are taken up again when the lease runs out.
                log.error("outbox database error", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
                claimed = 0
                error_wait = min(DB_ERROR_WAIT_S, error_wait * 2)
                stop.wait(error_wait)
                continue
            if claimed < self.batch_size:
                stop.wait(self.poll_s)
        self._release_all()
        log.info("delivery worker stopped", extra={"worker": self.queue.worker_id})

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim one batch and work through it; returns how many messages were claimed.

        If ``stop`` is set mid-batch, the message in hand is finished and the rest
        are released at once.
        """
        claimed = self.queue.claim(self.batch_size)
        for index, message_id in enumerate(claimed):
            if stop is not None and stop.is_set():
                released = self.queue.release(claimed[index:])
                log.info("released claimed messages on shutdown", extra={"count": released})
                break
            self.deliver(message_id)
            self.heartbeat()
        return len(claimed)

    def deliver(self, message_id: str) -> str | None:
        """Try one claimed message once; returns its new state (``None``: not ours after all)."""
        started = self.queue.start_attempt(message_id, self.policy.max_attempts)
        if started is None:
            return None
        # The delivery's log lines carry the request id of the Send that accepted the message,
        # so one browser request can be followed into the worker that emailed its result.
        with tracing.continued(started.request_id, started.traceparent):
            return self._send(started)

    def _send(self, started: StartedAttempt) -> str | None:
        message_id = started.email.message_id
        began = time.monotonic()
        try:
            self.transport.send(started.email)
        except TransportError as exc:
            state = self._failed(started, str(exc), permanent=exc.permanent)
            metrics.attempt(state, time.monotonic() - began)
            return state
        except Exception as exc:
            # A bug in a transport must not kill the worker or spin on one message.
            log.exception("transport raised an unexpected error", extra={"message_id": message_id})
            state = self._failed(started, f"internal error: {type(exc).__name__}", permanent=False)
            metrics.attempt(state, time.monotonic() - began)
            return state
        self.queue.record_delivered(started)
        metrics.attempt("delivered", time.monotonic() - began)
        log.info(
            "message delivered",
            extra={
                "message_id": message_id,
                "attempt": started.email.attempt,
                "ms": round((time.monotonic() - began) * 1000),
            },
        )
        return "delivered"

    def _failed(self, started: StartedAttempt, error: str, *, permanent: bool) -> str | None:
        state = self.queue.record_failed(
            started,
            error,
            permanent=permanent,
            max_attempts=self.policy.max_attempts,
            delay_for=self.policy.delay_for,
        )
        level = logging.ERROR if state == "dead" else logging.WARNING
        log.log(
            level,
            "delivery failed" + ("; message is dead" if state == "dead" else "; will retry"),
            extra={
                "message_id": started.email.message_id,
                "attempt": started.email.attempt,
                "error": error,
                "permanent": permanent,
            },
        )
        return state

    def _release_all(self) -> None:
        try:
            released = self.queue.release()
        except SQLAlchemyError as exc:
            # Nothing lost: the leases expire and another worker takes the messages.
            log.error("could not release claimed messages", extra={"error": str(exc)[:300]})
            return
        if released:
            log.info("released claimed messages on shutdown", extra={"count": released})
