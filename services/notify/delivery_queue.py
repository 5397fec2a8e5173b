"""The worker's side of the outbox: claiming due messages under a lease, recording
each attempt, and settling the outcome.

Exactly-once delivery is impossible with SMTP (the server may accept a message
and the worker die before it records that); this module makes everything else
exactly-once and makes that one case countable:

* A claim takes due messages (pending and due, or ``sending`` with an expired
  lease) and marks them ``sending`` with ``claimed_by`` and ``lease_until``.
  On PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``
  so concurrent workers take disjoint batches without waiting on each other;
  on SQLite ``BEGIN IMMEDIATE`` serialises writers, so the same SELECT+UPDATE
  is already atomic. The UPDATE repeats the "due" condition either way.
* Before each send the worker renews its lease and writes a
  ``delivery_attempts`` row in one transaction, and only if the message is
  still its own. A lease covers one send, so no other worker can take a
  message while it is being sent.
* Settling checks ownership again. An attempt row without an outcome is a
  send whose result was never recorded: the only source of duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import transaction, utcnow
from services.notify.store.models import (
    DEAD,
    DELIVERED,
    OUTCOME_DELIVERED,
    OUTCOME_FAILED,
    PENDING,
    SENDING,
    DeliveryAttempt,
    Message,
)
from services.notify.transports import MAX_ERROR_CHARS, OutgoingEmail

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class StartedAttempt:
    """A message this worker is about to send, and the attempt row recording it."""

    attempt_id: int
    email: OutgoingEmail
    # The accepting Send's trace, which the worker continues while it delivers.
    request_id: str | None = None
    traceparent: str | None = None


class DeliveryQueue:
    """Database operations of one worker (``worker_id``) on the outbox."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        worker_id: str,
        *,
        lease_s: float,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock

    @staticmethod
    def _due(now: datetime) -> ColumnElement[bool]:
        """Pending and due, or being sent under a lease that has run out (its worker died)."""
        return or_(
            and_(Message.state == PENDING, Message.next_attempt_at <= now),
            and_(Message.state == SENDING, Message.lease_until < now),
        )

    def _mine(self, message_id: str) -> tuple[ColumnElement[bool], ...]:
        """The message is claimed by this worker and still being sent."""
        return (Message.id == message_id, Message.claimed_by == self.worker_id, Message.state == SENDING)

    def claim(self, limit: int) -> list[str]:
        """Take up to ``limit`` due messages for this worker, oldest due first."""
        now = self._clock()
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(Message.id, Message.state, Message.claimed_by)
                .where(self._due(now))
                .order_by(Message.next_attempt_at, Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            session.execute(
                update(Message)
                .where(Message.id.in_(ids), self._due(now))
                .values(
                    state=SENDING, claimed_by=self.worker_id, lease_until=now + self._lease, updated_at=now
                )
                .execution_options(synchronize_session=False)
            )
            claimed = set(
                session.scalars(
                    select(Message.id).where(
                        Message.id.in_(ids), Message.claimed_by == self.worker_id, Message.state == SENDING
                    )
                )
            )
        for row in rows:
            if row.state == SENDING and row.id in claimed:
                # Its worker stopped without settling it; the attempt row (if any) shows whether it got far.
                log.warning(
                    "reclaimed a message whose lease expired",
                    extra={"message_id": row.id, "previous_worker": row.claimed_by},
                )
        return [message_id for message_id in ids if message_id in claimed]

    def start_attempt(self, message_id: str, max_attempts: int) -> StartedAttempt | None:
        """Renew the lease and record the attempt, or ``None`` if the message is not ours to send.

        A message whose attempts were used up by sends that never reported back
        (a worker killed each time, say) is declared dead here instead of being
        tried forever.
        """
        now = self._clock()
        with transaction(self._sessions) as session:
            message = session.scalars(
                select(Message).where(*self._mine(message_id)).with_for_update()
            ).one_or_none()
            if message is None:
                log.info("message is no longer claimed by this worker", extra={"message_id": message_id})
                return None
            if message.attempts >= max_attempts:
                message.state = DEAD
                message.last_error = (
                    f"gave up after {message.attempts} attempts; the last one never reported a result"
                    + (f" (earlier: {message.last_error})" if message.last_error else "")
                )[:MAX_ERROR_CHARS]
                message.lease_until = None
                message.claimed_by = None
                message.updated_at = now
                log.error("message is dead", extra={"message_id": message_id, "attempts": message.attempts})
                return None
            message.attempts += 1
            message.lease_until = now + self._lease
            message.updated_at = now
            attempt = DeliveryAttempt(
                message_id=message.id, attempt=message.attempts, worker=self.worker_id, started_at=now
            )
            session.add(attempt)
            session.flush()
            return StartedAttempt(
                attempt_id=attempt.id,
                email=OutgoingEmail(
                    message_id=message.id,
                    to=message.recipient,
                    subject=message.subject,
                    text=message.body_text,
                    html=message.body_html,
                    attempt=message.attempts,
                ),
                request_id=message.request_id,
                traceparent=message.traceparent,
            )

    def record_delivered(self, started: StartedAttempt) -> None:
        """The transport accepted the message: it is delivered, whoever holds the lease now."""
        now = self._clock()
        message_id = started.email.message_id
        with transaction(self._sessions) as session:
            session.execute(
                update(DeliveryAttempt)
                .where(DeliveryAttempt.id == started.attempt_id)
                .values(outcome=OUTCOME_DELIVERED, finished_at=now)
            )
            settled = {
                "state": DELIVERED,
                "delivered_at": now,
                "lease_until": None,
                "claimed_by": None,
                "last_error": None,
                "updated_at": now,
            }
            result = session.execute(update(Message).where(*self._mine(message_id)).values(**settled))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                # We lost the lease mid-send (the send outlasted it). The message did go
                # out, so record the truth; the new owner will find it delivered and stop.
                session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.state != DELIVERED)
                    .values(**settled)
                )
                log.warning("delivered after losing the lease", extra={"message_id": message_id})

    def record_failed(
        self,
        started: StartedAttempt,
        error: str,
        *,
        permanent: bool,
        max_attempts: int,
        delay_for: Callable[[int], float],
    ) -> str | None:
        """Schedule the next try (``delay_for(attempts)`` seconds on) or declare the message dead.

        Returns the new state, or ``None`` if another worker owns the message now.
        """
        now = self._clock()
        error = error[:MAX_ERROR_CHARS]
        message_id = started.email.message_id
        with transaction(self._sessions) as session:
            session.execute(
                update(DeliveryAttempt)
                .where(DeliveryAttempt.id == started.attempt_id)
                .values(outcome=OUTCOME_FAILED, finished_at=now, error=error)
            )
            message = session.scalars(
                select(Message).where(*self._mine(message_id)).with_for_update()
            ).one_or_none()
            if message is None:
                return None
            message.last_error = error
            message.lease_until = None
            message.claimed_by = None
            message.updated_at = now
            if permanent or message.attempts >= max_attempts:
                message.state = DEAD
            else:
                message.state = PENDING
                message.next_attempt_at = now + timedelta(seconds=delay_for(message.attempts))
            return message.state

    def release(self, message_ids: Sequence[str] | None = None) -> int:
        """Hand back claimed messages not yet started (all of this worker's, by default).

        Their attempts are untouched (nothing was tried) and they are due at once,
        so another worker picks them up without waiting for the lease to run out.
        """
        now = self._clock()
        conditions = [Message.claimed_by == self.worker_id, Message.state == SENDING]
        if message_ids is not None:
            if not message_ids:
                return 0
            conditions.append(Message.id.in_(list(message_ids)))
        with transaction(self._sessions) as session:
            result = session.execute(
                update(Message)
                .where(*conditions)
                .values(state=PENDING, claimed_by=None, lease_until=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def unsettled_attempts(session: Session, message_id: str | None = None) -> int:
    """Attempts that started but never recorded an outcome: each may be a duplicate delivery."""
    query = select(func.count()).select_from(DeliveryAttempt).where(DeliveryAttempt.outcome.is_(None))
    if message_id is not None:
        query = query.where(DeliveryAttempt.message_id == message_id)
    return int(session.scalar(query) or 0)
