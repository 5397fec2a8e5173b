"""``Idempotency-Key`` for every charge, hold, void and refund (and each posted payment), per practice.

- same key, same request → the first result again, never a second ledger row;
- same key, different request → :class:`IdempotencyMismatch` (422);
- same key while the first is still being processed → :class:`IdempotencyInFlight` (409).

The key is claimed (``pending``) and committed in its own short transaction
before the work starts, so a concurrent duplicate sees it (on PostgreSQL the
primary key makes the second insert fail; SQLite's BEGIN IMMEDIATE queues it).
The work's transaction marks it ``done`` with the result's id; a failed attempt
releases it so the client can retry. Keys are kept (≥ 24 h; never deleted here).
A claim left ``pending`` by a crashed process is taken over after
:data:`STALE_S`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import transaction
from services.portal.errors import IdempotencyInFlight, IdempotencyMismatch
from services.portal.store.models import IdempotencyKey

STALE_S = 300


def fingerprint(operation: str, values: dict[str, Any]) -> str:
    text = json.dumps({"op": operation, **values}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def claim(
    db: sessionmaker[Session], practice_id: str, key: str, operation: str, print_: str, now: datetime
) -> str | None:
    """Claim ``key``; returns the earlier result's id when this exact request was already done."""
    try:
        with transaction(db) as session:
            row = session.scalars(
                select(IdempotencyKey)
                .where(IdempotencyKey.practice_id == practice_id, IdempotencyKey.key == key)
                .with_for_update()
            ).one_or_none()
            if row is None:
                session.execute(
                    insert(IdempotencyKey).values(
                        practice_id=practice_id,
                        key=key,
                        operation=operation,
                        fingerprint=print_,
                        state="pending",
                        result_id="",
                        created_at=now,
                    )
                )
                return None
            if row.fingerprint != print_:
                raise IdempotencyMismatch("the key was used with a different request")
            if row.state == "done":
                return row.result_id
            if now - row.created_at < timedelta(seconds=STALE_S):
                raise IdempotencyInFlight("a request with this key is in progress")
            row.created_at = now  # a crashed attempt's claim: take it over
            return None
    except IntegrityError:
        raise IdempotencyInFlight("a request with this key is in progress") from None


def finish(session: Session, practice_id: str, key: str, result_id: str) -> None:
    """Inside the work's transaction: the key now answers with ``result_id``."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.practice_id == practice_id, IdempotencyKey.key == key)
        .values(state="done", result_id=result_id)
    )


def release(db: sessionmaker[Session], practice_id: str, key: str) -> None:
    """The work failed (nothing written): the client may retry with the same key."""
    with transaction(db) as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.practice_id == practice_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "pending",
            )
        )
