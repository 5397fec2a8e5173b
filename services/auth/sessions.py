"""Auth sessions (the OIDC ``sid``) and the revocation state every token check reads.

Both live in Redis so every auth process, and every ``ValidateToken`` caller,
sees a sign-out, a revocation or a suspension within one second (the portal
caches answers for at most that long).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import redis

from services.common.redis_conn import Keys


@dataclass(frozen=True)
class AuthSession:
    sid: str
    user_pk: str
    created: float
    auth_time: int
    amr: list[str]
    ip: str
    user_agent: str


class SessionStore:
    def __init__(self, client: redis.Redis, keys: Keys, max_age_s: int) -> None:
        self._redis = client
        self._keys = keys
        self.max_age_s = max_age_s

    def create(self, user_pk: str, amr: list[str], ip: str, user_agent: str) -> AuthSession:
        now = time.time()
        session = AuthSession(
            sid=secrets.token_urlsafe(24),
            user_pk=user_pk,
            created=now,
            auth_time=int(now),
            amr=amr,
            ip=ip,
            user_agent=user_agent[:300],
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._keys("sid", session.sid), json.dumps(session.__dict__), ex=self.max_age_s)
        pipe.zadd(self._keys("user-sids", user_pk), {session.sid: now})
        pipe.expire(self._keys("user-sids", user_pk), self.max_age_s)
        pipe.execute()
        return session

    def get(self, sid: str) -> AuthSession | None:
        raw = self._redis.get(self._keys("sid", sid))
        return AuthSession(**json.loads(raw)) if raw else None

    def end(self, sid: str) -> str | None:
        """End one session; returns its user, or None when it had already ended."""
        session = self.get(sid)
        self._redis.delete(self._keys("sid", sid))
        if session is not None:
            self._redis.zrem(self._keys("user-sids", session.user_pk), sid)
            return session.user_pk
        return None

    def list_for_user(self, user_pk: str) -> list[AuthSession]:
        sids = [s.decode() for s in self._redis.zrange(self._keys("user-sids", user_pk), 0, -1)]
        sessions = []
        for sid in sids:
            session = self.get(sid)
            if session is None:
                self._redis.zrem(self._keys("user-sids", user_pk), sid)
            else:
                sessions.append(session)
        return sessions

    def end_all_for_user(self, user_pk: str, *, except_sid: str | None = None) -> list[str]:
        ended = []
        for session in self.list_for_user(user_pk):
            if session.sid != except_sid:
                self.end(session.sid)
                ended.append(session.sid)
        return ended


class RevocationState:
    """Revoked access tokens (by ``jti``, until they expire) and suspended users."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def revoke_access(self, jti: str, exp: int) -> None:
        ttl = int(exp - time.time()) + 5
        if ttl > 0:
            self._redis.set(self._keys("revoked-jti", jti), b"1", ex=ttl)

    def set_suspended(self, user_pk: str, suspended: bool) -> None:
        if suspended:
            self._redis.set(self._keys("suspended", user_pk), b"1")
        else:
            self._redis.delete(self._keys("suspended", user_pk))

    def check(self, *, jti: str, sid: str, user_pk: str | None) -> str | None:
        """``None`` when the token is still good, else ``"REVOKED"`` or ``"USER_SUSPENDED"``.

        One round trip: the revoked-jti flag, the session, and the suspension flag.
        """
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(self._keys("revoked-jti", jti))
        pipe.exists(self._keys("sid", sid)) if sid else pipe.echo(b"1")
        pipe.exists(self._keys("suspended", user_pk)) if user_pk else pipe.echo(b"")
        revoked, session_alive, suspended = pipe.execute()
        if revoked:
            return "REVOKED"
        if sid and not session_alive:
            return "REVOKED"
        if user_pk and suspended:
            return "USER_SUSPENDED"
        return None
