"""Sign-in in a real browser: the portal's front door, auth's two forms, the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.e2e


def sign_in(page, stack: Stack, user) -> None:  # type: ignore[no-untyped-def]
    page.goto(stack.portal_url + "/")
    page.get_by_label("User ID").fill(user.user_id)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Verification code").fill(user.code())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(stack.portal_url + "/**")


def test_sign_in_from_portal_front_door_to_dashboard(stack: Stack, page, screenshots: Path) -> None:
    stack.start()
    user = add_staff(stack, practice_name="Bright Smiles Dental")

    page.goto(stack.portal_url + "/")
    assert page.url.startswith(stack.issuer)
    assert page.get_by_role("link", name="Forgot User ID?").is_visible()
    assert page.get_by_role("link", name="Forgot password?").is_visible()
    page.screenshot(path=str(screenshots / "signin.png"))

    sign_in(page, stack, user)

    assert page.url.startswith(stack.portal_url)
    body = page.locator("main").inner_text()
    assert user.name in body
    assert "Bright Smiles Dental" in body
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)


def test_wrong_password_shows_an_alert(stack: Stack, page) -> None:
    stack.start("auth-web", "auth-grpc", "portal-web")
    user = add_staff(stack)
    page.goto(stack.portal_url + "/")
    page.get_by_label("User ID").fill(user.user_id)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert "not right" in alert.inner_text()
