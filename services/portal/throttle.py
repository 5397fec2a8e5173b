"""Limits on the account look-up: a practice's staff find the patient at the desk, they
do not sweep the cardholder base (every match links an account to the practice).

A fixed window per practice and user, counted in Redis; over the limit the look-up is
refused with the seconds to wait (429 + ``Retry-After``). If Redis cannot be reached
the look-up fails closed (503), never unthrottled.
"""

from __future__ import annotations

from typing import Protocol

import redis

from services.common.redis_conn import Keys


class Throttle(Protocol):
    """Counts one attempt under ``key``; returns the seconds to wait when over the limit, else None."""

    def hit(self, key: str) -> int | None: ...


class NoThrottle:
    """For tests and tools that need no limit."""

    def hit(self, key: str) -> int | None:
        return None


class RedisWindowThrottle:
    """At most ``limit`` attempts per ``window_s`` seconds per key."""

    def __init__(self, client: redis.Redis, keys: Keys, *, limit: int, window_s: int) -> None:
        self._client = client
        self._keys = keys
        self.limit = limit
        self.window_s = window_s

    def hit(self, key: str) -> int | None:
        name = self._keys("throttle", key)
        # The window starts with the first attempt; INCR keeps the expiry SET gave it,
        # so no key can be left without one.
        self._client.set(name, 0, ex=self.window_s, nx=True)
        count = int(self._client.incr(name))
        if count <= self.limit:
            return None
        ttl = int(self._client.ttl(name))
        return ttl if ttl > 0 else self.window_s
