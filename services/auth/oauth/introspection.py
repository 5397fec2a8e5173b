"""Token introspection (RFC 7662) and revocation (RFC 7009), for authenticated clients.

Introspection answers for any of our tokens (resource servers introspect
tokens issued to other clients); revocation only acts on tokens issued to the
asking client, and answers 200 either way (RFC 7009 §2.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.auth import token_store
from services.auth.store.models import IssuedToken, User
from services.auth.tokens import TokenInvalid
from services.common.db import transaction, utcnow

if TYPE_CHECKING:
    from services.auth.bootstrap import Container

INACTIVE = {"active": False}


def introspect(container: Container, token: str, hint: str | None) -> dict:
    # The hint is only a hint: a token is found whatever it says (RFC 7662 §2.1).
    # Access tokens are JWTs (two dots); refresh tokens are base64url and have none.
    if not token or len(token) > 8192:
        return INACTIVE
    if token.count(".") == 2:
        return _introspect_access(container, token)
    return _introspect_refresh(container, token)


def _introspect_access(container: Container, token: str) -> dict:
    try:
        claims = container.access_tokens.verify(token, None)
    except TokenInvalid:
        return INACTIVE
    state = container.revocation.check(
        jti=claims.jti, sid=claims.sid, user_pk=claims.sub if claims.sid else None
    )
    if state is not None:
        return INACTIVE
    body = {
        "active": True,
        "token_type": "Bearer",
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": container.settings.issuer,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
    }
    if claims.sid:
        body.update(
            sid=claims.sid,
            practice_id=claims.practice_id,
            roles=claims.roles,
            amr=claims.amr,
            acr=claims.acr,
            auth_time=claims.auth_time,
        )
        with container.db() as db:
            user = db.get(User, claims.sub)
            if user is not None:
                body["username"] = user.user_id
    return body


def _introspect_refresh(container: Container, token: str) -> dict:
    with container.db() as db:
        row = db.get(IssuedToken, token_store.refresh_hash(token))
        if (
            row is None
            or row.kind != "refresh"
            or row.used_at
            or row.revoked_at
            or row.expires_at <= utcnow()
        ):
            return INACTIVE
        user = db.get(User, row.user_pk) if row.user_pk else None
    if user is None or user.status != "active" or (row.sid and container.sessions.get(row.sid) is None):
        return INACTIVE
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": row.user_pk,
        "username": user.user_id,
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.issued_at.timestamp()),
        "iss": container.settings.issuer,
        "sid": row.sid,
    }


def revoke(container: Container, client_id: str, token: str, hint: str | None) -> None:
    """Revoke a token of ``client_id``: a refresh token takes its whole grant with it."""
    if not token or len(token) > 8192:
        return
    with transaction(container.db) as db:
        # Whatever the hint says, both kinds are looked for (RFC 7009 §2.1).
        row = db.get(IssuedToken, token_store.refresh_hash(token))
        if row is not None and row.kind == "refresh":
            if row.client_id == client_id:
                token_store.revoke_grant(db, container.revocation, row.grant_id)
            return
        try:
            claims = container.access_tokens.verify(token, None)
        except TokenInvalid:
            return
        if claims.client_id != client_id:
            return
        row = db.get(IssuedToken, claims.jti)
        if row is not None:
            row.revoked_at = utcnow()
        container.revocation.revoke_access(claims.jti, claims.exp)
