"""The account pages every signed-in user has at auth."""

from __future__ import annotations

import time

import pytest

from services.auth.bootstrap import Container
from tests.support.auth_factory import make_user
from tests.support.oidc_flow import csrf, sign_in

pytestmark = pytest.mark.integration


def _signed_in(auth_app, user, code: str | None = None):  # type: ignore[no-untyped-def]
    browser = auth_app.test_client()
    done = sign_in(browser, "/signin", user, code)
    assert done.status_code == 302
    return browser


def test_activity_sessions_and_sign_out_everywhere_else(auth_app, auth_container: Container) -> None:
    user = make_user(auth_container)
    first = _signed_in(auth_app, user)
    # Another browser, same person; a code is accepted once, so it uses the next time step's.
    second = _signed_in(auth_app, user, user.code(time.time() + 30))

    activity = first.get("/account/activity").get_data(as_text=True)
    assert "sign in: success" in activity

    page = first.get("/account/sessions")
    html = page.get_data(as_text=True)
    assert html.count("<tr>") >= 3  # header + two sessions
    assert "This browser" in html

    ended = first.post("/account/sessions/end-others", data={"csrf_token": csrf(html)})
    assert ended.status_code == 302
    assert len(auth_container.sessions.list_for_user(user.user_pk)) == 1
    assert second.get("/").status_code == 302  # the other browser is signed out
    assert first.get("/").status_code == 200


def test_new_recovery_codes_need_the_password_and_void_the_old_ones(auth_app, auth_container: Container) -> None:
    user = make_user(auth_container)
    browser = _signed_in(auth_app, user)
    form = browser.get("/account/recovery-codes").get_data(as_text=True)
    wrong = browser.post("/account/recovery-codes", data={"csrf_token": csrf(form), "current_password": "nope"})
    assert wrong.status_code == 400
    first = browser.post("/account/recovery-codes", data={"csrf_token": csrf(form), "current_password": user.password})
    codes_1 = [line.split("<li>")[1].split("</li>")[0] for line in first.get_data(as_text=True).split("\n") if "<li>" in line and "-" in line]
    second = browser.post("/account/recovery-codes", data={"csrf_token": csrf(form), "current_password": user.password})
    codes_2 = second.get_data(as_text=True)
    assert len(codes_1) >= 1
    assert codes_1[0] not in codes_2

    from services.auth import recovery_codes

    with auth_container.db() as db:
        assert recovery_codes.remaining(db, user.user_pk) == 10
        assert not recovery_codes.redeem(db, auth_container.settings.totp_key, user.user_pk, codes_1[0])


def test_guessing_the_current_password_on_the_change_page_locks_like_sign_in(auth_app, auth_container: Container) -> None:
    user = make_user(auth_container)
    browser = _signed_in(auth_app, user)
    form = browser.get("/account/password").get_data(as_text=True)
    token = csrf(form)
    threshold = auth_container.settings.lockout.threshold
    for _ in range(threshold):
        wrong = browser.post(
            "/account/password",
            data={"csrf_token": token, "current_password": "a wrong guess", "new_password": "x", "confirm_password": "x"},
        )
        assert wrong.status_code == 400
    locked = browser.post(
        "/account/password",
        data={"csrf_token": token, "current_password": user.password, "new_password": "x", "confirm_password": "x"},
    )
    assert locked.status_code == 423
