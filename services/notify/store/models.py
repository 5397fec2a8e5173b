"""The notify service's tables: the outbox of rendered messages and a row per
delivery attempt.

A message moves ``pending -> sending -> delivered`` or, after its attempts run
out, to ``dead``; a failed attempt sends it back to ``pending`` with a later
``next_attempt_at``. ``sending`` always carries a lease (``claimed_by``,
``lease_until``) so a message whose worker died is taken up again once the
lease expires.

``delivery_attempts`` is what lets us count the one unavoidable duplicate:
an attempt row with no outcome means a worker started sending and never
recorded the result (it may have died after the SMTP server accepted).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UtcDateTime

PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
DEAD = "dead"
STATES = (PENDING, SENDING, DELIVERED, DEAD)

# Outcomes of one attempt; NULL while it is in flight (or forever, if the worker died).
OUTCOME_DELIVERED = "delivered"
OUTCOME_FAILED = "failed"


def new_message_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class Message(Base):
    """One email, rendered when accepted, exactly as it will be sent."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sending', 'delivered', 'dead')", name="ck_messages_state"),
        # The worker's claim query: due pending messages and expired leases, oldest first.
        Index("ix_messages_state_next_attempt", "state", "next_attempt_at"),
        Index("ix_messages_claimed_by", "claimed_by"),
        # The database, not a read-then-write, decides which of two racing Sends wins.
        UniqueConstraint("idempotency_key", name="uq_messages_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_message_id)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of what the caller sent, to notice a key reused for a different message.
    request_hash: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(35))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(400))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The trace of the Send that accepted it, so the worker's delivery log lines carry the
    # request id of the browser request that caused the email (services/common/tracing.py).
    request_id: Mapped[str | None] = mapped_column(String(64))
    traceparent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """One try at handing a message to the transport, written before the try starts."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_message", "message_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE", name="fk_delivery_attempts_message")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
