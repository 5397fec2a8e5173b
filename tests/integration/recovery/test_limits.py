"""The recovery throttles, and what a reset does (and does not do) to the sign-in lockout.

This package's stack sets the limits low (conftest.LIMITS): 5 recovery requests
per client address and 3 per account (User ID or email address) an hour; sign-in
locks after 3 failures; 8 failures per address in ten minutes answer 429.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.recovery.conftest import LIMITS
from tests.integration.recovery.flows import AuthDb, Client, Codes, alert, new_password
from tests.integration.recovery.test_enumeration import assert_alike
from tests.support.infra import random_id
from tests.support.smtp_inbox import SmtpInbox
from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.integration

PER_ADDRESS = int(LIMITS["AUTH_RECOVERY_PER_ADDRESS"])
PER_ACCOUNT = int(LIMITS["AUTH_RECOVERY_PER_ACCOUNT"])
THRESHOLD = int(LIMITS["AUTH_LOCKOUT_THRESHOLD"])
ADDRESS_FAILURES = int(LIMITS["AUTH_ADDRESS_MAX_FAILURES"])


def assert_throttled(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, (response.status_code, response.text[:300])
    message = alert(response)
    assert "too many recovery requests" in message.lower(), message
    assert re.search(r"wait \d+ minutes?", message), message
    assert "1-800-555-0199" in message  # where to turn meanwhile
    assert 0 < int(response.headers["Retry-After"]) <= 3600


def test_recovery_requests_are_throttled_per_address(stack: Stack) -> None:
    user = add_staff(stack)
    me = Client(stack)
    # Both kinds of request count against the one address.
    for n in range(PER_ADDRESS):
        answer = (
            me.forgot_user_id(random_id("x.") + "@example.test")
            if n % 2
            else me.forgot_password(random_id("u."), "a@example.test")
        )
        assert answer.status_code == 200, n
    known = me.forgot_password(user.user_id, user.email)
    unknown = me.forgot_user_id(random_id("x.") + "@example.test")
    assert_throttled(known)
    assert_throttled(unknown)
    assert_alike({"known": known, "unknown": unknown})
    # Another address is not affected.
    assert Client(stack).forgot_password(user.user_id, user.email).status_code == 200


def test_recovery_requests_are_throttled_per_account_alike_for_known_and_unknown(
    stack: Stack, inbox: SmtpInbox
) -> None:
    user = add_staff(stack)
    unknown_user_id, unknown_email = random_id("u."), random_id("x.") + "@example.test"
    throttled = {}
    for label, request in {
        "known User ID": lambda c: c.forgot_password(user.user_id, user.email),
        "unknown User ID": lambda c: c.forgot_password(unknown_user_id, user.email),
        "known address": lambda c: c.forgot_user_id(user.email),
        "unknown address": lambda c: c.forgot_user_id(unknown_email),
    }.items():
        # Each request from another address: only the per-account limit applies.
        for n in range(PER_ACCOUNT):
            assert request(Client(stack)).status_code == 200, (label, n)
        throttled[label] = request(Client(stack))
        assert_throttled(throttled[label])
    assert_alike(throttled)

    # Only the admitted requests sent mail: 3 reset links and 3 reminders, no more.
    assert len(inbox.wait_for(to=user.email, subject="Reset", count=PER_ACCOUNT)) == PER_ACCOUNT
    assert len(inbox.wait_for(to=user.email, subject="User ID", count=PER_ACCOUNT)) == PER_ACCOUNT
    db = AuthDb(stack)
    try:
        templates = sorted(row.template for row in db.outbox_to(user.email))
    finally:
        db.close()
    assert templates == ["password_reset"] * PER_ACCOUNT + ["user_id_reminder"] * PER_ACCOUNT


def test_a_reset_clears_the_password_lockout_but_not_second_factor_failures_nor_the_address_throttle(
    stack: Stack, inbox: SmtpInbox
) -> None:
    user = add_staff(stack)
    codes = Codes()
    me = Client(stack)
    failures_from_this_address = 0

    # Two wrong verification codes after the right password (one short of the threshold).
    verify = me.password_step(user.user_id, user.password)
    for _ in range(THRESHOLD - 1):
        verify = me.code_step(verify, codes.wrong(user))
        assert verify.status_code == 401
        failures_from_this_address += 1
    # Then wrong passwords until the account locks: now even the right password is refused.
    for _ in range(THRESHOLD):
        assert me.password_step(user.user_id, "Not-The-Password-1").status_code == 401
        failures_from_this_address += 1
    locked = me.password_step(user.user_id, user.password)
    assert locked.status_code == 423, locked.status_code
    inbox.wait_one(to=user.email, subject="locked")

    # The owner resets the password by email.
    me.forgot_password(user.user_id, user.email)
    link = inbox.link(inbox.wait_one(to=user.email, subject="Reset"), "/reset-password")
    password = new_password()
    assert me.reset(link, password).status_code == 200

    # The password lockout is gone (the email proved ownership)...
    verify = me.password_step(user.user_id, password)
    assert verify.url.startswith(stack.issuer + "/signin/verify"), (verify.status_code, verify.url)
    # ...but the second-factor failures still count: one more wrong code locks the account,
    # and then even the right code is refused.
    assert me.code_step(verify, codes.wrong(user)).status_code == 401
    failures_from_this_address += 1
    refused = me.code_step(me.get(stack.issuer + "/signin/verify"), codes.fresh(user))
    assert refused.status_code == 423, refused.status_code

    # ...and this address's failures still count: only the rest of its allowance is left.
    left = ADDRESS_FAILURES - failures_from_this_address
    assert left > 0
    answers = [me.password_step(random_id("u."), "Not-The-Password-1").status_code for _ in range(left + 1)]
    assert answers == [401] * left + [429]


def test_the_lockout_email_carries_a_single_use_unlock_link(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    me = Client(stack)
    for _ in range(THRESHOLD):
        assert me.password_step(user.user_id, "Not-The-Password-1").status_code == 401
    assert me.password_step(user.user_id, user.password).status_code == 423

    link = inbox.link(inbox.wait_one(to=user.email, subject="locked"), "/unlock")
    page = me.get(link)  # opening the link changes nothing (mail scanners follow links)...
    assert page.status_code == 200
    assert me.password_step(user.user_id, user.password).status_code == 423
    unlocked = me.submit(page, {}, url=stack.issuer + "/unlock")  # ...the button does
    assert unlocked.status_code == 200 and "unlocked" in unlocked.text

    verify = me.password_step(user.user_id, user.password)
    assert verify.url.startswith(stack.issuer + "/signin/verify")  # and the second factor is still asked
    assert me.get(link).status_code == 400  # used up
