"""Lockout and throttling: the brute-force rules, counted atomically in Redis.

The rules (Keycloak's brute-force knobs, with these defaults):

- After ``threshold`` (5) consecutive failures an account is locked for
  ``first_wait_s`` (1 minute); each further failure doubles the wait, up to
  ``max_wait_s`` (15 minutes). With ``permanent`` the first lock lasts until an
  administrator lifts it.
- Failures are forgotten ``reset_after_s`` (12 hours) after the last one, or
  on a completed sign-in.
- Failures are counted per submitted User ID, whether or not it exists, so a
  lockout reveals nothing about which accounts exist.
- Device-aware (OWASP's device cookie): a browser that completed a sign-in for
  a user carries a signed device cookie; its failures count against that
  device only, and failures from unknown browsers lock out unknown browsers
  only. An attacker cannot lock a user out of the browser they always use.
- Second-factor failures count per user across all devices (someone holding
  the password must not get fresh guesses by switching browsers); a password
  reset by email clears password failures but not these.
- Per client address: more than ``address_failures`` (20) failures in
  ``address_window_s`` (10 minutes), across any accounts, answers 429 with
  Retry-After for that address, without locking the accounts.

Every attempt is admitted or refused by one Lua script *before* any password
check, and an admitted attempt is counted as a failure up front (then given
back if it succeeds), so concurrent attempts can never exceed the threshold:
exactly ``threshold`` attempts reach the check, every other one is refused.
Attempts refused while locked do not extend the lock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import redis

from services.auth.settings import LockoutSettings
from services.common.redis_conn import Keys

if TYPE_CHECKING:
    from services.auth.bootstrap import Container

PERMANENT_UNTIL = 10**12  # seconds since the epoch: far enough to mean "until unlocked"

# KEYS: 1 counter hash of this attempt's kind, 2 the other kind's counter hash,
#       3 the address window (sorted set), 4 the user's set of counter keys
# ARGV: now, attempt id, threshold, first wait, max wait, reset after, permanent (0/1),
#       address limit, address window
_BEGIN = (
    """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[9]))
local in_window = redis.call('ZCARD', KEYS[3])
if in_window >= tonumber(ARGV[8]) then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  local retry = math.ceil(tonumber(oldest[2]) + tonumber(ARGV[9]) - now)
  return {'throttled', math.max(retry, 1), 0, 0}
end
for _, key in ipairs({KEYS[2], KEYS[1]}) do
  local until_ = tonumber(redis.call('HGET', key, 'locked_until') or '0')
  if until_ > now then
    return {'locked', math.ceil(until_ - now), 0, 0}
  end
  -- Failures are forgotten reset_after seconds after the last one (the TTL does the
  -- same, but checking here keeps the rule on the caller's clock, which tests inject).
  -- A lock still running is never forgotten: a permanent one waits for an administrator.
  local last = tonumber(redis.call('HGET', key, 'last') or '0')
  if last > 0 and now - last > tonumber(ARGV[6]) then
    redis.call('DEL', key)
  end
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last', now)
local threshold = tonumber(ARGV[3])
local newly_locked = 0
local permanent = false
local ttl = tonumber(ARGV[6])
if failures >= threshold then
  local until_
  if ARGV[7] == '1' then
    until_ = """
    + str(PERMANENT_UNTIL)
    + """
    permanent = true
  else
    local wait = math.min(tonumber(ARGV[4]) * (2 ^ (failures - threshold)), tonumber(ARGV[5]))
    until_ = now + wait
    ttl = ttl + wait
  end
  redis.call('HSET', KEYS[1], 'locked_until', until_)
  newly_locked = 1
end
-- The set of a user's counter keys is how unlock finds them: it lives as long as its
-- longest-lived member, and for ever (like its member) once a lock is permanent.
local set_is_permanent = redis.call('TTL', KEYS[4]) == -1
redis.call('SADD', KEYS[4], KEYS[1])
if permanent then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[4])
else
  redis.call('EXPIRE', KEYS[1], ttl)
  if not set_is_permanent and redis.call('TTL', KEYS[4]) < ttl then
    redis.call('EXPIRE', KEYS[4], ttl)
  end
end
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[9]))
return {'admitted', 0, failures, newly_locked}
"""
)

# The attempt succeeded: give back its pessimistic failure (and the lock it set).
# KEYS: 1 counter hash, 2 address window.
# ARGV: attempt id, threshold, whether this attempt set the lock (0/1), reset after
_REFUND = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', -1)
-- An attempt is only admitted while no lock runs, so a lock this attempt set is its
-- own (also past the threshold, after an earlier lock ended) and goes with it.
if failures < tonumber(ARGV[2]) or ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], 'locked_until')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
end
if failures <= 0 then
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return failures
"""


class Verdict(Enum):
    ADMITTED = "admitted"
    LOCKED = "locked"
    THROTTLED = "throttled"


class Kind(Enum):
    PASSWORD = "pwd"  # noqa: S105 - a counter name, not a password
    SECOND_FACTOR = "mfa"


@dataclass(frozen=True)
class Attempt:
    verdict: Verdict
    retry_after_s: int
    attempt_id: str
    counter_key: str
    address_key: str
    # True when this attempt, if it fails, is the one that locks the account.
    locks_on_failure: bool
    failures: int


class Lockout:
    def __init__(self, client: redis.Redis, keys: Keys, settings: LockoutSettings) -> None:
        self._redis = client
        self._keys = keys
        self.settings = settings
        self._begin = client.register_script(_BEGIN)
        self._refund = client.register_script(_REFUND)

    def _counter(self, kind: Kind, user_id: str, device: str | None) -> str:
        if kind is Kind.SECOND_FACTOR:
            return self._keys("lock", "mfa", user_id)
        return self._keys("lock", "pwd", user_id, f"device:{device}" if device else "unknown")

    def begin(self, kind: Kind, user_id: str, device: str | None, address: str, now: float) -> Attempt:
        """Admit or refuse one attempt. Raises ``redis.RedisError`` when Redis is
        unreachable: the caller must then refuse the sign-in (fail closed)."""
        user_id = user_id.lower()
        counter = self._counter(kind, user_id, device)
        other = self._counter(
            Kind.PASSWORD if kind is Kind.SECOND_FACTOR else Kind.SECOND_FACTOR, user_id, device
        )
        address_key = self._keys("addr-failures", address)
        attempt_id = secrets.token_hex(8)
        s = self.settings
        status, retry, failures, newly = self._begin(
            keys=[counter, other, address_key, self._keys("lock-keys", user_id)],
            args=[
                int(now),
                attempt_id,
                s.threshold,
                s.first_wait_s,
                s.max_wait_s,
                s.reset_after_s,
                "1" if s.permanent else "0",
                s.address_failures,
                s.address_window_s,
            ],
        )
        return Attempt(
            verdict=Verdict(status.decode() if isinstance(status, bytes) else status),
            retry_after_s=int(retry),
            attempt_id=attempt_id,
            counter_key=counter,
            address_key=address_key,
            locks_on_failure=bool(newly),
            failures=int(failures),
        )

    def succeeded_step(self, attempt: Attempt) -> None:
        """The password was right: this attempt is not a failure, but earlier
        failures stand until the whole sign-in completes."""
        self._refund(
            keys=[attempt.counter_key, attempt.address_key],
            args=[
                attempt.attempt_id,
                self.settings.threshold,
                "1" if attempt.locks_on_failure else "0",
                self.settings.reset_after_s,
            ],
        )

    def signed_in(self, attempt: Attempt, user_id: str, device: str | None) -> None:
        """Both factors passed: forget this device's password failures and the second-factor failures."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._counter(Kind.PASSWORD, user_id.lower(), device))
        pipe.delete(self._counter(Kind.SECOND_FACTOR, user_id.lower(), device))
        pipe.zrem(attempt.address_key, attempt.attempt_id)
        pipe.execute()

    def clear_password_failures(self, user_id: str) -> None:
        """After a password reset by email (ownership proven): password lockouts on every device end.
        Second-factor failures and the address throttle stay."""
        keys_key = self._keys("lock-keys", user_id.lower())
        prefix = self._keys("lock", "pwd", user_id.lower())
        members = [m.decode() for m in self._redis.smembers(keys_key)]
        doomed = [m for m in members if m.startswith(prefix)]
        if doomed:
            self._redis.delete(*doomed)
            self._redis.srem(keys_key, *doomed)

    def unlock(self, user_id: str) -> None:
        """An administrator (or the owner through the unlock email) lifts every lock."""
        keys_key = self._keys("lock-keys", user_id.lower())
        members = [m.decode() for m in self._redis.smembers(keys_key)]
        self._redis.delete(
            keys_key,
            *members,
            self._counter(Kind.PASSWORD, user_id.lower(), None),
            self._counter(Kind.SECOND_FACTOR, user_id.lower(), None),
        )

    def locked_until(self, user_id: str, device: str | None) -> float | None:
        """When the lock that applies to this device ends (for pages and mail), or None."""
        values = []
        for key in (
            self._counter(Kind.PASSWORD, user_id.lower(), device),
            self._counter(Kind.SECOND_FACTOR, user_id.lower(), None),
        ):
            raw = self._redis.hget(key, "locked_until")
            if raw:
                values.append(float(raw))
        return max(values) if values else None


def unlock(container: Container, user_id: str) -> None:
    Lockout(container.redis, container.keys, container.settings.lockout).unlock(user_id)
