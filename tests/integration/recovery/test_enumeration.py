"""The recovery pages tell nobody whether an account or an address exists: known and
unknown identifiers get byte-identical answers once the per-request tokens are masked.

(Equal timing is shown by ``make bench``, not here: timed assertions are flaky.)
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.integration.recovery.flows import Client
from tests.support.infra import random_id
from tests.support.smtp_inbox import SmtpInbox
from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.integration

# Per-request values: the CSRF token in the page, the request id header.
MASKS = [(re.compile(r'name="csrf_token" value="[^"]+"'), 'name="csrf_token" value="…"')]
PER_REQUEST_HEADERS = {"date", "x-request-id", "set-cookie"}


def fingerprint(response: requests.Response) -> dict[str, object]:
    """Everything a client can see, with the per-request tokens masked."""
    body = response.text
    for pattern, replacement in MASKS:
        body = pattern.sub(replacement, body)
    return {
        "status": response.status_code,
        "body": body,
        "headers": sorted(
            (name.lower(), value)
            for name, value in response.headers.items()
            if name.lower() not in PER_REQUEST_HEADERS
        ),
        "cookies": sorted(cookie.name for cookie in response.cookies),
        "redirect": response.headers.get("Location"),
    }


def assert_alike(answers: dict[str, requests.Response]) -> None:
    prints = {label: fingerprint(response) for label, response in answers.items()}
    first_label, first = next(iter(prints.items()))
    for label, other in prints.items():
        for part in first:
            assert other[part] == first[part], f"{label} differs from {first_label} in {part}"


def test_forgot_user_id_answers_alike_for_known_and_unknown_addresses(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    answers = {
        "known": Client(stack).forgot_user_id(user.email),
        "known, other case": Client(stack).forgot_user_id(user.email.upper()),
        "unknown": Client(stack).forgot_user_id(random_id("nobody.") + "@example.test"),
        "unknown domain": Client(stack).forgot_user_id(user.user_id + "@elsewhere.test"),
    }
    assert answers["known"].status_code == 200
    assert "If that email address is registered" in answers["known"].text
    assert_alike(answers)
    # The difference is only in the mailbox of the owner.
    assert len(inbox.wait_for(to=user.email, subject="User ID", count=2)) == 2


def test_forgot_password_answers_alike_for_known_and_unknown_user_ids(stack: Stack, inbox: SmtpInbox) -> None:
    user = add_staff(stack)
    answers = {
        "known, address on file": Client(stack).forgot_password(user.user_id, user.email),
        "known, another address": Client(stack).forgot_password(user.user_id, "someone@example.test"),
        "unknown User ID": Client(stack).forgot_password(random_id("u."), user.email),
        "unknown both": Client(stack).forgot_password(random_id("u."), random_id("x.") + "@example.test"),
    }
    assert answers["known, address on file"].status_code == 200
    assert "If the User ID and email address match" in answers["known, address on file"].text
    assert_alike(answers)
    inbox.wait_one(to=user.email, subject="Reset")
