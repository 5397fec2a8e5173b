"""The OIDC tokens of each signed-in portal session, kept server-side in Redis.

Why not inside the session blob itself: a browser often has several requests
in flight (two tabs, a page and its form post), and each writes the whole
session back when it ends. If one of them refreshed the tokens, another could
write the old ones back; auth rotates refresh tokens and treats a reused one as
theft, revoking the sign-in. So the session holds only a random reference, the
tokens live under it, and refreshing happens under a lock with a re-read.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import redis

from services.common.redis_conn import Keys
from services.common.token_client import TokenInfo

# Refresh this long before the access token expires (tokens live 5 minutes).
REFRESH_MARGIN_S = 30
# Keep the tokens a little longer than the session, so they never vanish first.
GRACE_S = 60


@dataclass(frozen=True)
class SessionTokens:
    """The tokens from auth's token endpoint that the portal keeps for a session.

    ``id_token`` is kept for ``id_token_hint`` at sign-out; ``refresh_token`` is
    empty when auth issued none (then an expired access token means a fresh
    sign-in, which auth completes without asking while its own session lives).
    """

    access_token: str
    id_token: str = ""
    refresh_token: str = ""

    @classmethod
    def from_token_response(
        cls, response: Mapping[str, Any], previous: SessionTokens | None = None
    ) -> SessionTokens:
        """From a token endpoint answer; a refresh answer may omit what stays the same."""
        access_token = response.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ValueError("token response has no access_token")
        return cls(
            access_token=access_token,
            id_token=str(response.get("id_token") or (previous.id_token if previous else "")),
            refresh_token=str(
                response.get("refresh_token") or (previous.refresh_token if previous else "")
            ),
        )


def needs_refresh(info: TokenInfo, now: float, margin_s: int = REFRESH_MARGIN_S) -> bool:
    """True when the access token is expired, or active but within ``margin_s`` of ``exp``.

    Any other inactive reason (revoked, suspended…) is final: refreshing would
    only be refused, and must not be tried.
    """
    if info.active:
        return info.exp - now <= margin_s
    return info.reason == "EXPIRED"


class RefreshBusy(Exception):
    """Another request of the same session is refreshing and did not finish in time."""


class RedisTokenStore:
    """Tokens by session reference, with a per-session refresh lock."""

    LOCK_HOLD_S = 10

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._keys = keys
        self._sleep = sleep
        self._monotonic = monotonic

    def create(self, tokens: SessionTokens, ttl_s: int) -> str:
        """Store tokens under a new random reference, for the session to keep."""
        ref = secrets.token_urlsafe(24)
        self.replace(ref, tokens, ttl_s)
        return ref

    def replace(self, ref: str, tokens: SessionTokens, ttl_s: int) -> None:
        self._client.set(self._keys("tokens", ref), json.dumps(asdict(tokens)), ex=ttl_s + GRACE_S)

    def load(self, ref: str, ttl_s: int) -> SessionTokens | None:
        """The session's tokens, extending their life along with the session's."""
        raw = self._client.getex(self._keys("tokens", ref), ex=ttl_s + GRACE_S)
        if raw is None:
            return None
        return SessionTokens(**json.loads(raw))

    def delete(self, ref: str) -> None:
        self._client.delete(self._keys("tokens", ref), self._keys("tokens-lock", ref))

    @contextmanager
    def refresh_lock(self, ref: str, wait_s: float = 3.0) -> Iterator[None]:
        """Hold the session's refresh lock; raise :class:`RefreshBusy` after ``wait_s``.

        The lock expires by itself after ``LOCK_HOLD_S`` (longer than a refresh's
        HTTP timeout), so a crashed worker cannot block its session for good.
        """
        key = self._keys("tokens-lock", ref)
        owner = secrets.token_hex(8)
        deadline = self._monotonic() + wait_s
        while not self._client.set(key, owner, nx=True, ex=self.LOCK_HOLD_S):
            if self._monotonic() >= deadline:
                raise RefreshBusy
            self._sleep(0.05)
        try:
            yield
        finally:
            # Release only our own lock (it may have expired and been taken since).
            if self._client.get(key) == owner.encode():
                self._client.delete(key)
