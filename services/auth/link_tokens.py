"""Single-use tokens carried by emailed links: password reset, unlock, invitation.

At least 128 random bits (we use 256), stored only as a SHA-256 hash, bound
to one user and one purpose, short-lived, and void once used, when a newer
one of the same purpose is issued, or when the password changes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.auth.store.models import RecoveryToken
from services.common.db import utcnow

LIFETIMES_S = {"reset": 30 * 60, "unlock": 30 * 60, "invite": 72 * 3600}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(db: Session, user_pk: str, purpose: str) -> str:
    """A new token; earlier unused tokens of the same purpose for this user die."""
    now = utcnow()
    db.execute(
        update(RecoveryToken)
        .where(
            RecoveryToken.user_pk == user_pk,
            RecoveryToken.purpose == purpose,
            RecoveryToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(32)
    db.add(
        RecoveryToken(
            token_hash=_hash(token),
            user_pk=user_pk,
            purpose=purpose,
            created_at=now,
            expires_at=now + timedelta(seconds=LIFETIMES_S[purpose]),
        )
    )
    return token


def peek(db: Session, token: str, purpose: str) -> str | None:
    """The user a live token belongs to, without using it (to show the form)."""
    if not token or len(token) > 200:
        return None
    row = db.get(RecoveryToken, _hash(token))
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row.user_pk


def consume(db: Session, token: str, purpose: str) -> str | None:
    """Use the token once: its user, or None when unknown, used, expired or of another purpose."""
    user_pk = peek(db, token, purpose)
    if user_pk is None:
        return None
    claimed = db.execute(
        update(RecoveryToken)
        .where(RecoveryToken.token_hash == _hash(token), RecoveryToken.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    return user_pk if claimed == 1 else None


def void_all(db: Session, user_pk: str, purposes: tuple[str, ...] = ("reset", "unlock")) -> None:
    """A password change makes every outstanding reset and unlock link useless."""
    db.execute(
        update(RecoveryToken)
        .where(
            RecoveryToken.user_pk == user_pk,
            RecoveryToken.purpose.in_(purposes),
            RecoveryToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
