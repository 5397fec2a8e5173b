"""Accepting messages into the outbox, and what operators do with them afterwards.

``Outbox.send`` is the heart of the service's promise: once it returns an id,
the rendered message is committed and a worker will deliver it. The
idempotency key is enforced by a unique constraint, so two racing Sends with
the same key cannot both insert; the loser re-reads and answers with the
winner's message (``duplicate=True``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.common import tracing
from services.common.db import transaction, utcnow
from services.notify.errors import InvalidRequest, MessageNotFound, RetryRefused
from services.notify.rendering import Renderer
from services.notify.store.models import DELIVERED, PENDING, SENDING, STATES, Message
from services.notify.validation import check_address, check_idempotency_key, check_locale, check_message_id

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_LIST_LIMIT = 1000


@dataclass(frozen=True)
class Accepted:
    """The answer to a Send: the stored message's id, and whether it already existed."""

    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class MessageView:
    """A message's delivery state, without its body (which may hold a reset link)."""

    message_id: str
    state: str
    attempts: int
    last_error: str | None
    template: str
    to: str
    subject: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    claimed_by: str | None
    lease_until: datetime | None

    @classmethod
    def of(cls, message: Message) -> MessageView:
        return cls(
            message_id=message.id,
            state=message.state,
            attempts=message.attempts,
            last_error=message.last_error,
            template=message.template,
            to=message.recipient,
            subject=message.subject,
            created_at=message.created_at,
            next_attempt_at=message.next_attempt_at,
            delivered_at=message.delivered_at,
            claimed_by=message.claimed_by,
            lease_until=message.lease_until,
        )


def request_hash(template: str, to: str, params: Mapping[str, str], locale: str) -> str:
    """A fingerprint of what the caller asked for, to spot a key reused for another message."""
    canonical = json.dumps(
        {"template": template, "to": to, "params": dict(params), "locale": locale},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Outbox:
    """The accept side of the outbox plus the operator's view and redrive."""

    def __init__(self, sessions: sessionmaker[Session], renderer: Renderer, clock: Clock = utcnow) -> None:
        self._sessions = sessions
        self._renderer = renderer
        self._clock = clock

    def send(
        self,
        idempotency_key: str,
        template: str,
        to: str,
        params: Mapping[str, str],
        locale: str = "",
    ) -> Accepted:
        """Validate, render and store a message; the same key always yields the same message.

        A repeat of a known key is answered from the store before anything
        else is checked: the first request was accepted, so its retry must be too.
        """
        check_idempotency_key(idempotency_key)
        fingerprint = request_hash(template, to, params, locale)
        existing = self._find_by_key(idempotency_key)
        if existing is not None:
            return self._duplicate(idempotency_key, existing, fingerprint)

        check_address(to)
        locale = check_locale(locale)
        rendered = self._renderer.render(template, params, locale)
        now = self._clock()
        trace = tracing.current()
        message = Message(
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            template=template,
            locale=rendered.locale,
            recipient=to,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            request_id=trace.request_id if trace else None,
            traceparent=trace.traceparent if trace else None,
            created_at=now,
            updated_at=now,
        )
        try:
            with transaction(self._sessions) as session:
                # Checked again inside the transaction: on SQLite this runs under the write
                # lock, so a concurrent Send cannot slip in between this read and the insert.
                raced = _key_row(session, idempotency_key)
                if raced is not None:
                    return self._duplicate(idempotency_key, raced, fingerprint)
                session.add(message)
        except IntegrityError:
            # PostgreSQL: another Send with this key committed between our check and our insert.
            winner = self._find_by_key(idempotency_key)
            if winner is None:
                raise
            return self._duplicate(idempotency_key, winner, fingerprint)
        log.info(
            "message accepted",
            extra={"message_id": message.id, "template": template, "locale": message.locale},
        )
        return Accepted(message.id, duplicate=False)

    def _find_by_key(self, key: str) -> tuple[str, str] | None:
        with self._sessions() as session:
            return _key_row(session, key)

    @staticmethod
    def _duplicate(key: str, row: tuple[str, str], fingerprint: str) -> Accepted:
        message_id, stored_hash = row
        if stored_hash != fingerprint:
            # Still a success (the key names the message), but the caller has a bug worth seeing.
            log.warning(
                "idempotency key reused for a different message; the stored message stands",
                extra={"message_id": message_id},
            )
        return Accepted(message_id, duplicate=True)

    def status(self, message_id: str) -> MessageView:
        check_message_id(message_id)
        with self._sessions() as session:
            message = session.get(Message, message_id)
            if message is None:
                raise MessageNotFound(f"no message with id {message_id!r}")
            return MessageView.of(message)

    def list_messages(self, state: str | None = None, limit: int = 50) -> list[MessageView]:
        """The newest messages first, optionally only those in one state."""
        if state is not None and state not in STATES:
            raise InvalidRequest(f"unknown state {state!r}; one of {', '.join(STATES)}")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        query = select(Message).order_by(Message.created_at.desc(), Message.id).limit(limit)
        if state is not None:
            query = query.where(Message.state == state)
        with self._sessions() as session:
            return [MessageView.of(message) for message in session.scalars(query)]

    def retry(self, message_id: str) -> MessageView:
        """Put a dead (or waiting) message back in line: attempts reset, next try now.

        Refused for a delivered message (that would send it twice) and for one a
        live worker is sending right now; a ``sending`` message whose lease has
        expired (its worker died) may be retried.
        """
        check_message_id(message_id)
        now = self._clock()
        with transaction(self._sessions) as session:
            message = session.get(Message, message_id, with_for_update=True)
            if message is None:
                raise MessageNotFound(f"no message with id {message_id!r}")
            if message.state == DELIVERED:
                raise RetryRefused(
                    f"message {message_id} was already delivered at "
                    f"{message.delivered_at:%Y-%m-%d %H:%M:%S} UTC; it is not sent again"
                )
            if message.state == SENDING and message.lease_until is not None and message.lease_until > now:
                raise RetryRefused(
                    f"message {message_id} is being delivered by worker {message.claimed_by} right now"
                )
            previous = message.state
            message.state = PENDING
            message.attempts = 0
            message.next_attempt_at = now
            message.lease_until = None
            message.claimed_by = None
            message.updated_at = now
            view = MessageView.of(message)
        log.info("message put back for delivery", extra={"message_id": message_id, "was": previous})
        return view


def _key_row(session: Session, key: str) -> tuple[str, str] | None:
    row = session.execute(
        select(Message.id, Message.request_hash).where(Message.idempotency_key == key)
    ).first()
    return (row[0], row[1]) if row is not None else None
