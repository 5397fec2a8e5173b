"""Redis stopped mid-run: sign-in fails closed with a clear 503 page (never a 500, never an
unthrottled attempt), /readyz turns false, and everything recovers by itself."""

from __future__ import annotations

import pytest

from tests.integration.auth.signin.support import UNAVAILABLE_TEXT, Auth, csrf
from tests.support.auth_factory import make_user
from tests.support.infra import OwnRedis

pytestmark = pytest.mark.integration


def assert_unavailable(response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 503, (response.status_code, body[:800])
    assert UNAVAILABLE_TEXT in body
    assert int(response.headers["Retry-After"]) > 0
    assert "Set-Cookie" not in response.headers or "pc_auth_session=;" in response.headers["Set-Cookie"]


def test_sign_in_fails_closed_while_redis_is_down_and_recovers(make_auth, own_redis: OwnRedis) -> None:
    auth: Auth = make_auth(redis=own_redis.url)
    user = make_user(auth.container)
    # Before the outage: one browser has a session and is at the code step, another has only the form.
    at_code_step = auth.browser()
    assert at_code_step.password(user.user_id, user.password).status_code == 302
    code_page = at_code_step.get("/signin/verify")
    with_form = auth.browser()
    form_page = with_form.get("/signin")
    assert auth.browser().get("/readyz").status_code == 200

    own_redis.stop()
    checked = {}
    fresh = auth.browser()
    checked["GET /signin (no cookie)"] = fresh.get("/signin")
    checked["POST /signin (no cookie)"] = fresh.post(
        "/signin", {"csrf_token": "x", "user_id": user.user_id, "password": user.password}
    )
    checked["POST /signin (session)"] = with_form.post(
        "/signin",
        {
            "csrf_token": csrf(form_page.get_data(as_text=True)),
            "user_id": user.user_id,
            "password": user.password,
        },
    )
    checked["POST /signin/verify"] = at_code_step.post(
        "/signin/verify", {"csrf_token": csrf(code_page.get_data(as_text=True)), "code": user.code()}
    )
    checked["GET /signin/verify"] = at_code_step.get("/signin/verify")
    checked["GET /signin/enroll"] = auth.browser().get("/signin/enroll")
    checked["GET /unlock"] = auth.browser().get("/unlock?token=abc")
    checked["GET /account/password"] = auth.browser().get("/account/password")
    for what, response in checked.items():
        try:
            assert_unavailable(response)
        except AssertionError as exc:
            raise AssertionError(f"{what}: {exc}") from None
    ready = auth.browser().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["redis"].startswith("failing")
    assert auth.browser().get("/healthz").status_code == 200
    # Nothing was checked or counted while Redis was away.
    assert [(e.event, e.outcome) for e in auth.events(user.user_id)] == [("sign_in.password", "ok")]
    print(
        "\nRedis down: "
        + ", ".join(f"{what} -> {response.status_code}" for what, response in checked.items())
        + f", /readyz -> {ready.status_code}"
    )

    own_redis.start()
    assert auth.browser().get("/readyz").status_code == 200
    done = auth.browser().sign_in(user)
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    assert done.headers["Location"].endswith("/")
    print("Redis back: /readyz -> 200, sign-in -> 302 (same app, no restart)")
