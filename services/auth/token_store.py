"""What was issued to whom, so tokens can be refreshed, rotated and revoked.

Refresh tokens rotate on every use; presenting one that was already used
revokes its whole family (the grant), because only a thief would still hold
it (RFC 9700 §4.14.2). Revoking a grant writes the revocation of its
still-living access tokens to Redis, where every token check sees it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.auth.sessions import RevocationState
from services.auth.store.models import IssuedToken
from services.common.db import utcnow


def refresh_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def record_access(
    db: Session,
    *,
    jti: str,
    exp: int,
    grant_id: str,
    client_id: str,
    user_pk: str | None,
    sid: str | None,
    scope: str,
) -> None:
    db.add(
        IssuedToken(
            id=jti,
            kind="access",
            grant_id=grant_id,
            client_id=client_id,
            user_pk=user_pk,
            sid=sid,
            scope=scope,
            issued_at=utcnow(),
            expires_at=datetime.fromtimestamp(exp, UTC),
        )
    )


def record_refresh(
    db: Session,
    *,
    token: str,
    expires_at: datetime,
    grant_id: str,
    client_id: str,
    user_pk: str,
    sid: str,
    scope: str,
) -> None:
    db.add(
        IssuedToken(
            id=refresh_hash(token),
            kind="refresh",
            grant_id=grant_id,
            client_id=client_id,
            user_pk=user_pk,
            sid=sid,
            scope=scope,
            issued_at=utcnow(),
            expires_at=expires_at,
        )
    )


def claim_refresh(db: Session, token: str, client_id: str) -> tuple[IssuedToken | None, bool]:
    """Mark a refresh token of ``client_id`` used. Returns (row, reused): ``reused``
    means it had been used or revoked before (the caller revokes the family). A
    token of another client is left alone and answers (None, False)."""
    row = db.get(IssuedToken, refresh_hash(token))
    if row is None or row.kind != "refresh" or row.client_id != client_id:
        return None, False
    claimed = db.execute(
        update(IssuedToken)
        .where(IssuedToken.id == row.id, IssuedToken.used_at.is_(None), IssuedToken.revoked_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    return row, claimed == 0


def _revoke_rows(db: Session, revocation: RevocationState, rows: list[IssuedToken]) -> int:
    now = utcnow()
    for row in rows:
        row.revoked_at = now
        if row.kind == "access" and row.expires_at > now:
            revocation.revoke_access(row.id, int(row.expires_at.timestamp()))
    return len(rows)


def _live(query):  # type: ignore[no-untyped-def]
    return query.where(IssuedToken.revoked_at.is_(None), IssuedToken.expires_at > utcnow())


def revoke_grant(db: Session, revocation: RevocationState, grant_id: str) -> int:
    rows = list(db.scalars(_live(select(IssuedToken).where(IssuedToken.grant_id == grant_id))))
    return _revoke_rows(db, revocation, rows)


def revoke_session(db: Session, revocation: RevocationState, sid: str) -> int:
    rows = list(db.scalars(_live(select(IssuedToken).where(IssuedToken.sid == sid))))
    return _revoke_rows(db, revocation, rows)


def revoke_user(db: Session, revocation: RevocationState, user_pk: str) -> int:
    rows = list(db.scalars(_live(select(IssuedToken).where(IssuedToken.user_pk == user_pk))))
    return _revoke_rows(db, revocation, rows)


def refresh_expiry(session_created: float, session_max_s: int, ttl_s: int) -> datetime:
    """Refresh tokens end with their auth session (12 hours at most)."""
    session_end = datetime.fromtimestamp(session_created, UTC) + timedelta(seconds=session_max_s)
    return min(session_end, utcnow() + timedelta(seconds=ttl_s))
