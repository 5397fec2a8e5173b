"""The look-up limit: per user, a fixed window, 429 with Retry-After, audited; fails closed."""

from __future__ import annotations

import pytest

from services.common.redis_conn import Keys
from services.portal.throttle import RedisWindowThrottle
from tests.unit.portal.conftest import Harness, build_harness, make_settings
from tests.unit.portal.factories import make_practice
from tests.unit.portal.fakes import FakeClock, FakeRedis
from tests.unit.portal.test_api import bearer


def test_a_fixed_window_per_key() -> None:
    clock = FakeClock()
    throttle = RedisWindowThrottle(FakeRedis(clock), Keys("t:", "portal"), limit=3, window_s=60)  # type: ignore[arg-type]
    assert [throttle.hit("a") for _ in range(3)] == [None, None, None]
    assert throttle.hit("a") == 60
    assert throttle.hit("b") is None  # another user has their own window
    clock.advance(61)
    assert throttle.hit("a") is None


@pytest.fixture
def limited() -> Harness:
    return build_harness(make_settings(lookup_limit=2, lookup_window_s=300))


def test_too_many_lookups_are_refused_with_retry_after_and_audited(limited: Harness) -> None:
    practice = make_practice(limited.portal.db)
    headers = bearer(limited, practice, "front_desk")
    body = {"account_number": "6045870000000000", "zip": "97214"}
    assert [
        limited.client.post("/api/v1/account-lookups", json=body, headers=headers).status_code
        for _ in range(2)
    ] == [200, 200]
    refused = limited.client.post("/api/v1/account-lookups", json=body, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "300"
    assert refused.get_json()["error"] == "too_many_requests"
    log = limited.client.get(
        "/api/v1/audit-log?outcome=throttled", headers=bearer(limited, practice, "admin")
    )
    assert log.get_json()["total"] == 1
    # Another user of the practice is not held up by the first.
    assert (
        limited.client.post(
            "/api/v1/account-lookups", json=body, headers=bearer(limited, practice)
        ).status_code
        == 200
    )


def test_the_page_says_to_wait(limited: Harness) -> None:
    practice = make_practice(limited.portal.db)
    limited.sign_in(practice_id=practice.practice_id, roles=("front_desk",))
    csrf = limited.csrf_from("/accounts/lookup")
    form = {"account_number": "6045870000000000", "zip": "97214", "csrf_token": csrf}
    for _ in range(2):
        limited.client.post("/accounts/lookup", data=form)
    response = limited.client.post("/accounts/lookup", data=form)
    assert response.status_code == 429 and "Try again in 5 minutes" in response.get_data(as_text=True)


def test_redis_down_fails_closed(limited: Harness) -> None:
    practice = make_practice(limited.portal.db)
    headers = bearer(limited, practice, "front_desk")
    limited.redis.down = True
    response = limited.client.post(
        "/api/v1/account-lookups",
        json={"account_number": "6045870000000000", "zip": "97214"},
        headers=headers,
    )
    assert response.status_code == 503
