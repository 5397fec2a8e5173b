"""The lockout and throttling rules of lockout.py, run against real Redis with an
injected clock (``now``), so waits of minutes and hours take no time."""

from __future__ import annotations

import pytest
import redis

from services.auth.lockout import Kind, Lockout, Verdict
from services.auth.settings import LockoutSettings
from services.common.redis_conn import Keys
from tests.support.infra import random_id

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0
IP = "203.0.113.7"


def make_lockout(client: redis.Redis, prefix: str, **settings: object) -> Lockout:
    return Lockout(client, Keys(prefix, "auth"), LockoutSettings(**settings))  # type: ignore[arg-type]


@pytest.fixture
def lockout(redis_client: redis.Redis, redis_prefix: str) -> Lockout:
    return make_lockout(redis_client, redis_prefix)


def fail(
    lockout: Lockout, user: str, now: float, *, device: str | None = None, ip: str = IP, kind=Kind.PASSWORD
):
    """One attempt that fails (admitted attempts are counted as failures up front)."""
    return lockout.begin(kind, user, device, ip, now)


def lock_now(lockout: Lockout, user: str, now: float = T0, **kwargs) -> None:
    for i in range(lockout.settings.threshold):
        attempt = fail(lockout, user, now, **kwargs)
        assert attempt.verdict is Verdict.ADMITTED
        assert attempt.locks_on_failure is (i == lockout.settings.threshold - 1)


def test_threshold_is_exact(lockout: Lockout) -> None:
    user = random_id("u.")
    for n in range(1, 5):
        attempt = fail(lockout, user, T0 + n)
        assert attempt.verdict is Verdict.ADMITTED and attempt.failures == n
        assert not attempt.locks_on_failure
    fifth = fail(lockout, user, T0 + 5)
    assert fifth.verdict is Verdict.ADMITTED and fifth.locks_on_failure
    sixth = fail(lockout, user, T0 + 6)
    assert sixth.verdict is Verdict.LOCKED
    assert sixth.retry_after_s == 60 - 1


def test_wait_grows_1_2_4_8_then_caps_at_15_minutes(lockout: Lockout) -> None:
    user = random_id("u.")
    lock_now(lockout, user, T0)
    now = T0
    waits = []
    for _ in range(6):
        refused = fail(lockout, user, now)
        assert refused.verdict is Verdict.LOCKED
        waits.append(refused.retry_after_s)
        now += refused.retry_after_s - 1
        assert fail(lockout, user, now).verdict is Verdict.LOCKED, "a lock must last to its end"
        now += 1
        again = fail(lockout, user, now)
        assert again.verdict is Verdict.ADMITTED and again.locks_on_failure
    assert waits == [60, 120, 240, 480, 900, 900]


def test_attempts_while_locked_do_not_extend_the_lock(lockout: Lockout) -> None:
    user = random_id("u.")
    lock_now(lockout, user, T0)
    for offset in (1, 10, 30, 59):
        refused = fail(lockout, user, T0 + offset)
        assert refused.verdict is Verdict.LOCKED
        assert refused.retry_after_s == 60 - offset
    assert lockout.locked_until(user, None) == T0 + 60
    assert fail(lockout, user, T0 + 60).verdict is Verdict.ADMITTED


def test_permanent_mode_locks_until_an_administrator_unlocks(redis_client, redis_prefix) -> None:
    lockout = make_lockout(redis_client, redis_prefix, permanent=True)
    user = random_id("u.")
    lock_now(lockout, user, T0)
    # Another device's attempt later must not give the lock (or the index unlock uses) a time to live.
    trusted = lockout.begin(Kind.PASSWORD, user, "device-1", IP, T0 + 1)
    assert trusted.verdict is Verdict.ADMITTED
    keys = Keys(redis_prefix, "auth")
    assert redis_client.ttl(keys("lock", "pwd", user, "unknown")) == -1
    assert redis_client.ttl(keys("lock-keys", user)) == -1
    for later in (T0 + 60, T0 + 900, T0 + 30 * 86400):
        assert fail(lockout, user, later).verdict is Verdict.LOCKED
    lockout.unlock(user)
    assert fail(lockout, user, T0 + 30 * 86400).verdict is Verdict.ADMITTED


def test_failures_are_forgotten_12_hours_after_the_last_one(lockout: Lockout) -> None:
    user = random_id("u.")
    for n in range(4):
        fail(lockout, user, T0 + n)
    # Within the window the fifth failure locks ...
    other = random_id("u.")
    for n in range(4):
        fail(lockout, other, T0 + n)
    assert fail(lockout, other, T0 + 12 * 3600).locks_on_failure
    # ... and after it the count starts again.
    later = fail(lockout, user, T0 + 3 + 12 * 3600 + 1)
    assert later.verdict is Verdict.ADMITTED and later.failures == 1 and not later.locks_on_failure


def test_a_completed_sign_in_forgets_the_failures(lockout: Lockout) -> None:
    user = random_id("u.")
    for n in range(4):
        fail(lockout, user, T0 + n)
    right = lockout.begin(Kind.PASSWORD, user, None, IP, T0 + 5)
    lockout.succeeded_step(right)
    code = lockout.begin(Kind.SECOND_FACTOR, user, None, IP, T0 + 6)
    assert code.verdict is Verdict.ADMITTED
    lockout.signed_in(code, user, None)
    after = fail(lockout, user, T0 + 7)
    assert after.failures == 1 and not after.locks_on_failure


def test_right_password_as_threshold_attempt_leaves_no_lock(lockout: Lockout) -> None:
    """The fifth attempt locks pessimistically; when it turns out right, the lock is given back."""
    user = random_id("u.")
    for n in range(4):
        fail(lockout, user, T0 + n)
    right = lockout.begin(Kind.PASSWORD, user, None, IP, T0 + 5)
    assert right.locks_on_failure
    lockout.succeeded_step(right)
    assert lockout.locked_until(user, None) is None
    assert lockout.begin(Kind.SECOND_FACTOR, user, None, IP, T0 + 6).verdict is Verdict.ADMITTED


def test_right_password_after_the_lock_ends_is_not_locked_again(lockout: Lockout) -> None:
    """After a lock ends, the right password must lead to the code step, not into a new lock."""
    user = random_id("u.")
    lock_now(lockout, user, T0)
    right = lockout.begin(Kind.PASSWORD, user, None, IP, T0 + 60)
    assert right.verdict is Verdict.ADMITTED
    lockout.succeeded_step(right)
    code = lockout.begin(Kind.SECOND_FACTOR, user, None, IP, T0 + 61)
    assert code.verdict is Verdict.ADMITTED, f"locked for {code.retry_after_s} s after the right password"


def test_unknown_devices_lock_only_unknown_devices(lockout: Lockout) -> None:
    user = random_id("u.")
    lock_now(lockout, user, T0)
    assert fail(lockout, user, T0 + 1).verdict is Verdict.LOCKED
    trusted = lockout.begin(Kind.PASSWORD, user, "device-1", IP, T0 + 1)
    assert trusted.verdict is Verdict.ADMITTED and trusted.failures == 1
    # A trusted device's own failures count against that device alone.
    lock_now(lockout, user, T0 + 2, device="device-2")
    assert fail(lockout, user, T0 + 3, device="device-2").verdict is Verdict.LOCKED
    assert fail(lockout, user, T0 + 3, device="device-1").verdict is Verdict.ADMITTED


def test_second_factor_failures_lock_every_device(lockout: Lockout) -> None:
    user = random_id("u.")
    lock_now(lockout, user, T0, kind=Kind.SECOND_FACTOR, device="device-1")
    for device in (None, "device-1", "device-2"):
        assert fail(lockout, user, T0 + 1, device=device).verdict is Verdict.LOCKED
        assert fail(lockout, user, T0 + 1, device=device, kind=Kind.SECOND_FACTOR).verdict is Verdict.LOCKED


def test_user_ids_are_counted_case_insensitively(lockout: Lockout) -> None:
    user = random_id("u.")
    for n in range(4):
        fail(lockout, user, T0 + n)
    assert fail(lockout, user.upper(), T0 + 5).locks_on_failure


def test_address_throttle_counts_failures_across_accounts(redis_client, redis_prefix) -> None:
    lockout = make_lockout(redis_client, redis_prefix, address_failures=3, address_window_s=600)
    for n in range(3):
        assert fail(lockout, random_id("u."), T0 + n).verdict is Verdict.ADMITTED
    throttled = fail(lockout, random_id("u."), T0 + 10)
    assert throttled.verdict is Verdict.THROTTLED
    assert throttled.retry_after_s == 600 - 10  # until the oldest failure leaves the window
    assert fail(lockout, random_id("u."), T0 + 10, ip="198.51.100.1").verdict is Verdict.ADMITTED
    assert fail(lockout, random_id("u."), T0 + 601).verdict is Verdict.ADMITTED
