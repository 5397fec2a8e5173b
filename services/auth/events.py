"""The security event log: sign-ins, lockouts, unlocks, second-factor and
password changes, suspensions. Never a password, code, secret or token.

Every event goes through ``record()``, which is also where the metrics come
from (``auth_security_events_total``, ``auth_sign_ins_total``,
``auth_lockouts_total``): an event is counted when its transaction commits,
so the counters never count what the log does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.auth import metrics
from services.auth.store.models import SecurityEvent
from services.common.db import utcnow

# Events recorded in a session and not yet committed, in ``Session.info``.
_UNCOUNTED = "pc_uncounted_events"


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for the log."""

    ip: str
    user_agent: str


def record(
    db: Session,
    event: str,
    *,
    user_id: str | None,
    practice_id: str | None = None,
    outcome: str = "ok",
    reason: str | None = None,
    origin: Origin | None = None,
    details: dict | None = None,
) -> None:
    db.add(
        SecurityEvent(
            at=utcnow(),
            event=event,
            user_id=user_id.lower()[:64] if user_id else None,
            practice_id=practice_id,
            outcome=outcome,
            reason=reason,
            ip=origin.ip if origin else None,
            user_agent=(origin.user_agent[:300] if origin else None),
            details=details or {},
        )
    )
    db.info.setdefault(_UNCOUNTED, []).append((event, outcome, reason))


@sa_event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for event, outcome, reason in session.info.pop(_UNCOUNTED, ()):
        metrics.count_event(event, outcome, reason)


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_UNCOUNTED, None)


def recent(db: Session, *, user_id: str | None = None, limit: int = 50) -> list[SecurityEvent]:
    query = select(SecurityEvent).order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc()).limit(limit)
    if user_id:
        query = query.where(SecurityEvent.user_id == user_id.lower())
    return list(db.scalars(query))
