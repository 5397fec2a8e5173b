"""Maintenance mode: one flag in Redis that every auth and portal process obeys.

While on, every page but health checks and static files answers 503 with
``Retry-After`` and the operator's message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from services.common.config import Env
from services.common.redis_conn import connect, key_prefix, redis_url

RETRY_AFTER_S = 300


@dataclass
class MaintenanceState:
    on: bool
    message: str


class Maintenance:
    # A process looks at Redis at most once a second; turning it on reaches everyone within that.
    CACHE_S = 1.0

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._key = f"{prefix}maintenance"
        self._cached: tuple[float, MaintenanceState] | None = None

    @classmethod
    def from_env(cls, env: Env) -> Maintenance:
        return cls(connect(redis_url(env)), key_prefix(env))

    def turn_on(self, message: str) -> None:
        self._client.set(self._key, json.dumps({"message": message, "since": time.time()}))
        self._cached = None

    def turn_off(self) -> None:
        self._client.delete(self._key)
        self._cached = None

    def state(self) -> MaintenanceState:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.CACHE_S:
            return self._cached[1]
        try:
            raw = self._client.get(self._key)
        except redis.RedisError:
            # Unknown: say "not in maintenance" and let each feature fail closed on its own.
            return MaintenanceState(False, "")
        state = (
            MaintenanceState(True, json.loads(raw).get("message", "")) if raw else MaintenanceState(False, "")
        )
        self._cached = (now, state)
        return state
