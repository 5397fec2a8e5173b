"""Forgot password in a real browser: from the sign-in page's link, through the email a
real SMTP server received, to the new password, sign-in with TOTP, and the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.infra import Databases
from tests.support.smtp_inbox import SmtpInbox
from tests.support.stack import Stack, add_staff, make_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


@pytest.fixture
def mail_stack(tmp_path: Path, databases: Databases, redis_url: str, inbox: SmtpInbox) -> Iterator[Stack]:
    system = make_stack(tmp_path / "stack", databases, redis_url, NOTIFY_SMTP_URL=inbox.url)
    yield system
    system.stop()


def test_forgot_password_from_the_sign_in_page_to_the_dashboard(
    mail_stack: Stack,
    inbox: SmtpInbox,
    page,
    screenshots: Path,  # type: ignore[no-untyped-def]
) -> None:
    stack = mail_stack
    stack.start()
    user = add_staff(stack, practice_name="Lakeside Family Dental")

    page.goto(stack.portal_url + "/")
    page.wait_for_url(stack.issuer + "/signin**")
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("User ID").fill(user.user_id)
    page.get_by_label("Email address").fill(user.email)
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    mail = inbox.wait_one(to=user.email, subject="Reset your Provider Center password")
    link = inbox.link(mail, "/reset-password")
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.screenshot(path=str(screenshots / "reset-password.png"))

    # The password policy, with the reason.
    page.get_by_label("New password", exact=True).fill("password1234")
    page.get_by_label("New password again").fill("password1234")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("alert")).to_contain_text("common")

    password = "Lantern-Meadow-Quartz-58"
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password again").fill(password)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("heading", name="Your password has been changed")).to_be_visible()
    inbox.wait_one(to=user.email, subject="password was changed")

    # Sign in with the new password: the second factor is still asked, then the dashboard.
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("User ID").fill(user.user_id)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Verification code")).to_be_visible()
    page.get_by_label("Verification code").fill(user.code())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(stack.portal_url + "/**")
    body = page.locator("main").inner_text()
    assert user.name in body and "Lakeside Family Dental" in body

    # The link was used up, and its token was written to no log.
    page.goto(link)
    expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()
    token = link.split("token=")[1]
    for name in stack.specs:
        assert token not in stack.log(name), f"the reset token is in {name}'s log"
