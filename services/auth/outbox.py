"""Auth's outbox: an email is a row written in the same transaction as the
event that wants it, so the email is sent if and only if the event happened.

The relay (relay.py) hands rows to notify with the row id as idempotency key.
Each row keeps the request id and trace of the request that wrote it, so the
email's journey shows in the logs under the same ids as its cause.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.auth.store.models import OutboxMessage
from services.common import tracing
from services.common.db import utcnow


def enqueue(db: Session, template: str, to: str, params: dict[str, str]) -> OutboxMessage:
    now = utcnow()
    trace = tracing.current()
    row = OutboxMessage(
        template=template,
        to=to,
        params={key: str(value) for key, value in params.items()},
        created_at=now,
        next_attempt_at=now,
        attempts=0,
        request_id=trace.request_id if trace else None,
        traceparent=trace.traceparent if trace else None,
    )
    db.add(row)
    return row
