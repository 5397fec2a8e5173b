"""Fakes for the portal's ports: a verifier with canned answers, a clock, an in-memory Redis.

The in-memory Redis implements only the commands the portal's sessions, token
store and maintenance flag use; integration tests cover the real server.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import redis

from services.common.token_client import TokenInfo, TokenServiceUnavailable


@dataclass
class FakeClock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeVerifier:
    """Answers from a table of token -> TokenInfo; unknown tokens are inactive (BAD_SIGNATURE)."""

    answers: dict[str, TokenInfo] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)

    def issue(self, token: str, **fields: object) -> TokenInfo:
        info = TokenInfo(active=True, **fields)  # type: ignore[arg-type]
        self.answers[token] = info
        return info

    def revoke(self, token: str) -> None:
        self.answers[token] = TokenInfo.inactive("REVOKED")

    def expire(self, token: str) -> None:
        self.answers[token] = TokenInfo.inactive("EXPIRED")

    def verify(self, token: str) -> TokenInfo:
        self.calls.append(token)
        if self.down:
            raise TokenServiceUnavailable("fake auth is down")
        return self.answers.get(token, TokenInfo.inactive("BAD_SIGNATURE"))

    def check_ready(self) -> None:
        if self.down:
            raise TokenServiceUnavailable("fake auth is down")

    def with_exp(self, token: str, exp: int) -> None:
        self.answers[token] = replace(self.answers[token], exp=exp)


class FakeRedis:
    """get/set/getex/delete/ping with expiry on an injected clock; ``down`` makes every call fail."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.data: dict[str, tuple[bytes, float | None]] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise redis.ConnectionError("fake Redis is down")

    def _live(self, name: str) -> bytes | None:
        entry = self.data.get(name)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self.clock():
            del self.data[name]
            return None
        return value

    def ping(self) -> bool:
        self._check()
        return True

    def get(self, name: str) -> bytes | None:
        self._check()
        return self._live(name)

    def set(self, name: str, value: str | bytes, ex: int | None = None, nx: bool = False) -> bool | None:
        self._check()
        if nx and self._live(name) is not None:
            return None
        raw = value.encode() if isinstance(value, str) else value
        self.data[name] = (raw, self.clock() + ex if ex else None)
        return True

    def getex(self, name: str, ex: int | None = None) -> bytes | None:
        self._check()
        value = self._live(name)
        if value is not None and ex:
            self.data[name] = (value, self.clock() + ex)
        return value

    def delete(self, *names: str) -> int:
        self._check()
        return sum(1 for name in names if self.data.pop(name, None) is not None)

    def incr(self, name: str) -> int:
        """Keeps the key's expiry, like Redis."""
        self._check()
        value = int(self._live(name) or 0) + 1
        expires = self.data[name][1] if name in self.data else None
        self.data[name] = (str(value).encode(), expires)
        return value

    def ttl(self, name: str) -> int:
        self._check()
        if self._live(name) is None:
            return -2
        expires = self.data[name][1]
        return -1 if expires is None else int(expires - self.clock())

    def keys_with(self, part: str) -> list[str]:
        return [key for key in self.data if part in key]
