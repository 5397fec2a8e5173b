"""Auth's outbox: an email is a row written in the same transaction as the
event that wants it, so the email is sent if and only if the event happened.

The relay (relay.py) hands rows to notify with the row id as idempotency key.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.auth.store.models import OutboxMessage
from services.common.db import utcnow


def enqueue(db: Session, template: str, to: str, params: dict[str, str]) -> OutboxMessage:
    now = utcnow()
    row = OutboxMessage(
        template=template,
        to=to,
        params={key: str(value) for key, value in params.items()},
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    db.add(row)
    return row
