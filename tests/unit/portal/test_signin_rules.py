"""The pure rules of signing in: where we may redirect, when to refresh, the refresh lock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.redis_conn import Keys
from services.common.token_client import TokenInfo
from services.portal.tokens import RedisTokenStore, RefreshBusy, SessionTokens, needs_refresh
from services.portal.web.signin import safe_next
from tests.unit.portal.fakes import FakeClock, FakeRedis


@pytest.mark.parametrize(
    "value",
    ["/", "/accounts", "/accounts?id=7&tab=history", "/a/b#c", "/path/with:colon"],
)
def test_local_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "accounts",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/ok\nLocation: x",
        "/tab\there",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_becomes_the_dashboard(value: object) -> None:
    assert safe_next(value) == "/"


@given(st.text())
def test_safe_next_never_leaves_the_site(value: str) -> None:
    result = safe_next(value)
    assert result == "/" or (result.startswith("/") and not result.startswith(("//", "/\\")))
    assert not any(ord(ch) < 0x20 for ch in result)


def test_refresh_is_needed_near_expiry_or_when_expired_only() -> None:
    now = 1_000_000.0
    assert not needs_refresh(TokenInfo(active=True, exp=int(now) + 31), now)
    assert needs_refresh(TokenInfo(active=True, exp=int(now) + 30), now)
    assert needs_refresh(TokenInfo.inactive("EXPIRED"), now)
    for reason in ("REVOKED", "USER_SUSPENDED", "BAD_SIGNATURE"):
        assert not needs_refresh(TokenInfo.inactive(reason), now)


def test_a_refresh_answer_keeps_what_it_leaves_out() -> None:
    before = SessionTokens("at-1", "idt-1", "rt-1")
    assert SessionTokens.from_token_response({"access_token": "at-2"}, before) == SessionTokens(
        "at-2", "idt-1", "rt-1"
    )
    with pytest.raises(ValueError):
        SessionTokens.from_token_response({"token_type": "Bearer"})


def test_token_store_round_trip_and_ttl() -> None:
    clock = FakeClock()
    redis = FakeRedis(clock)
    store = RedisTokenStore(redis, Keys("t:", "portal"))  # type: ignore[arg-type]
    ref = store.create(SessionTokens("at", "idt", "rt"), ttl_s=100)
    clock.advance(150)  # within the grace period
    assert store.load(ref, ttl_s=100) == SessionTokens("at", "idt", "rt")
    clock.advance(159)  # load extended it by 160 s
    assert store.load(ref, ttl_s=100) is not None
    clock.advance(161)
    assert store.load(ref, ttl_s=100) is None


def test_the_refresh_lock_excludes_and_gives_up_in_time() -> None:
    clock = FakeClock()
    redis = FakeRedis(clock)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    store = RedisTokenStore(redis, Keys("t:", "portal"), sleep=sleep, monotonic=clock)  # type: ignore[arg-type]
    with store.refresh_lock("ref"):
        with pytest.raises(RefreshBusy), store.refresh_lock("ref", wait_s=1.0):
            pass
        assert 0.9 <= sum(slept) <= 1.1
    with store.refresh_lock("ref"):  # released
        pass
