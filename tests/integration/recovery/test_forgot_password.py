"""Forgot password and forgot User ID, end to end: real processes, the email from a
real SMTP server, the link in it, the new password, and what the reset does to
the user's sessions and tokens."""

from __future__ import annotations

import pytest

from providercenter.auth.v1 import token_pb2, token_pb2_grpc
from services.auth import accounts
from services.common.grpc_util import channel
from tests.integration.recovery.flows import (
    BAD_PASSWORD,
    AuthDb,
    Client,
    Codes,
    add_users,
    alert,
    auth_container,
    new_password,
    token_of,
    user_ids_for,
)
from tests.support.browser_http import follow, portal_access_token
from tests.support.infra import random_id
from tests.support.smtp_inbox import SmtpInbox
from tests.support.stack import Stack, add_staff, wait_for

pytestmark = pytest.mark.integration


def validate(stack: Stack, token: str) -> token_pb2.ValidateTokenResponse:
    with channel(stack.auth_grpc) as chan:
        return token_pb2_grpc.TokenServiceStub(chan).ValidateToken(
            token_pb2.ValidateTokenRequest(token=token, audience="portal"), timeout=5
        )


def test_forgot_password_end_to_end(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack, practice_name="Harbor Vision")
    codes = Codes()

    # Signed in to the portal before the reset: this session must not survive it.
    old = Client(stack)
    dashboard = old.sign_in_to_portal(user, user.password, codes.fresh(user))
    assert dashboard.status_code == 200 and dashboard.url.startswith(stack.portal_url), dashboard.url
    old_token = portal_access_token(stack.env, old.session)
    assert validate(stack, old_token).active

    # The request: the neutral answer, and an email with a link.
    me = Client(stack)
    sent = me.forgot_password(user.user_id.upper(), user.email)
    assert sent.status_code == 200
    assert "Check your email" in sent.text
    mail = inbox.wait_one(to=user.email, subject="Reset your Provider Center password")
    link = inbox.link(mail, "/reset-password")
    assert link.startswith(stack.issuer + "/reset-password?token=")
    assert len(token_of(link)) >= 43  # 256 random bits, base64url
    assert "Harbor Vision" in mail.text and "30 minutes" in mail.text
    assert link in mail.html  # the button in the HTML part carries the same link

    # The page the link opens, and the password policy applied on it.
    page = me.get(link)
    assert page.status_code == 200 and "Choose a new password" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the token must not leak onwards
    refused = me.reset(link, BAD_PASSWORD)
    assert refused.status_code == 400
    assert "common" in alert(refused).lower(), alert(refused)
    mismatch = me.reset(link, new_password(), confirm=new_password())
    assert mismatch.status_code == 400 and "not the same" in alert(mismatch)

    password = new_password()
    done = me.reset(link, password)  # the refusals above did not use the link up
    assert done.status_code == 200, done.text[:500]
    assert "Your password has been changed" in done.text
    changed = inbox.wait_one(to=user.email, subject="password was changed")
    assert "Harbor Vision" in changed.text

    # Every earlier session is gone: its access token is inactive over gRPC, and the portal
    # bounces the old browser to sign in (once its token-check cache, at most a second, has run out).
    assert not validate(stack, old_token).active
    wait_for(
        lambda: old.get(stack.portal_url + "/").url.startswith(stack.issuer + "/signin"),
        10,
        what="the portal to send the old session to sign in",
    )

    # The old password no longer works; the new one does, and the second factor is still asked.
    fresh = Client(stack)
    assert fresh.password_step(user.user_id, user.password).status_code == 401
    verify = fresh.password_step(user.user_id, password, start=stack.portal_url + "/")
    assert verify.url.startswith(stack.issuer + "/signin/verify"), verify.url
    assert 'name="code"' in verify.text
    dashboard = fresh.code_step(verify, codes.fresh(user))
    assert dashboard.status_code == 200 and dashboard.url.startswith(stack.portal_url), dashboard.url
    assert user.name in dashboard.text
    assert validate(stack, portal_access_token(stack.env, fresh.session)).active


def test_forgot_user_id_lists_every_user_id_with_its_practice(stack: Stack, inbox: SmtpInbox) -> None:
    shared = random_id("front.desk.") + "@example.test"
    add_users(stack, "Maple Dental", 1, email=shared)
    add_users(stack, "Cedar Veterinary Clinic", 2, email=shared)

    answer = Client(stack).forgot_user_id(shared.upper())
    assert answer.status_code == 200 and "Check your email" in answer.text

    mail = inbox.wait_one(to=shared, subject="User ID")
    lines = [line.strip() for line in mail.text.splitlines() if " — " in line]
    assert len(lines) == 3, mail.text
    practices = sorted(line.split(" — ")[1] for line in lines)
    assert practices == ["Cedar Veterinary Clinic", "Cedar Veterinary Clinic", "Maple Dental"]
    assert sorted(line.split(" — ")[0] for line in lines) == user_ids_for(stack, shared)
    assert "Cedar Veterinary Clinic" in mail.html and "Maple Dental" in mail.html


def test_a_used_link_does_not_work_twice(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    me = Client(stack)
    me.forgot_password(user.user_id, user.email)
    link = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")
    assert me.reset(link, new_password()).status_code == 200

    again = me.get(link)
    assert again.status_code == 400 and "no longer valid" in again.text
    # Posting the form again (a page left open in another tab) is refused too.
    second = new_password()
    replay = me.post_reset(token_of(link), second)
    assert replay.status_code == 400 and "no longer valid" in replay.text
    assert Client(stack).password_step(user.user_id, second).status_code == 401


def test_a_link_expires_after_30_minutes(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    me = Client(stack)
    me.forgot_password(user.user_id, user.email)
    link = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")
    db = AuthDb(stack)
    try:
        row = db.token_row(token_of(link))
        assert row is not None and row.used_at is None
        assert (row.expires_at - row.created_at).total_seconds() == 30 * 60
        assert me.get(link).status_code == 200  # alive now

        db.expire(token_of(link), seconds_ago=1)  # as if 30 minutes and a second had passed
    finally:
        db.close()
    expired = me.get(link)
    assert expired.status_code == 400 and "no longer valid" in expired.text
    assert me.post_reset(token_of(link), new_password()).status_code == 400
    # The old password still stands.
    assert "/signin/verify" in Client(stack).password_step(user.user_id, user.password).url


def test_a_newer_link_voids_the_older_one(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    me = Client(stack)
    me.forgot_password(user.user_id, user.email)
    older = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")
    me.forgot_password(user.user_id, user.email)
    mails = inbox.wait_for(to=user.email, subject="Reset", count=2)
    newer = inbox.link(mails[1], "/reset-password")
    assert newer != older

    assert me.get(older).status_code == 400
    assert me.reset(newer, new_password()).status_code == 200


def test_a_password_change_voids_outstanding_links(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    me = Client(stack)
    me.forgot_password(user.user_id, user.email)
    link = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")

    # The user remembers the password after all, signs in at auth and changes it there.
    verify = me.password_step(user.user_id, user.password)
    account = me.code_step(verify, Codes().fresh(user))
    assert account.status_code == 200 and account.url.startswith(stack.issuer), account.url
    form = me.get(stack.issuer + "/account/password")
    password = new_password()
    changed = follow(
        me.session,
        me.submit(
            form, {"current_password": user.password, "new_password": password, "confirm_password": password}
        ),
    )
    assert changed.status_code == 200, changed.text[:300]
    inbox.wait_one(to=user.email, subject="password was changed")

    gone = me.get(link)
    assert gone.status_code == 400 and "no longer valid" in gone.text


def test_unknown_identifiers_get_no_email(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    unknown = random_id("nobody.") + "@example.test"
    me = Client(stack)
    assert me.forgot_user_id(unknown).status_code == 200
    assert me.forgot_password(user.user_id, unknown).status_code == 200  # right User ID, wrong address
    assert me.forgot_password(user.user_id, user.email).status_code == 200
    inbox.wait_one(to=user.email, subject="Reset")  # mail flows; none was even queued for the others
    db = AuthDb(stack)
    try:
        assert db.outbox_to(unknown) == []
    finally:
        db.close()
    assert inbox.messages(to=unknown) == []


def test_a_suspended_account_s_link_opens_nothing(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    me = Client(stack)
    me.forgot_password(user.user_id, user.email)
    link = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")
    with auth_container(stack) as container:
        accounts.apply(container, "suspend", user.user_id, actor="test")

    assert me.get(link).status_code == 400
    refused = me.post_reset(token_of(link), new_password())
    assert refused.status_code == 400 and "no longer valid" in refused.text


def test_a_link_issued_before_a_suspension_stays_void_after_reactivation(
    stack: Stack, inbox: SmtpInbox
) -> None:
    user = add_staff(stack)
    me = Client(stack)
    me.forgot_password(user.user_id, user.email)
    link = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")
    with auth_container(stack) as container:
        accounts.apply(container, "suspend", user.user_id, actor="test")
        accounts.apply(container, "reactivate", user.user_id, actor="test")
    assert me.get(link).status_code == 400
