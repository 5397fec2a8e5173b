"""The invitation flow end to end, every process real and a real SMTP server as the inbox:
an admin invites through the portal, auth emails the link (outbox → relay → notify → SMTP),
the new person sets a password at auth's /invite page, enrols TOTP and lands on the dashboard.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pyotp
import pytest
import requests

from tests.support.browser_http import CSRF, follow, sign_in_through_portal
from tests.support.infra import Databases, random_id
from tests.support.smtp_inbox import SmtpInbox
from tests.support.stack import Stack, add_staff, make_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path, databases: Databases, redis_url: str, inbox: SmtpInbox) -> Iterator[Stack]:
    system = make_stack(
        tmp_path, databases, redis_url, NOTIFY_SMTP_URL=inbox.url, NOTIFY_BACKOFF_BASE_S="0.3"
    )
    system.start()
    try:
        yield system
    finally:
        system.stop()


def _csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def test_invite_email_set_password_enrol_dashboard(stack: Stack, inbox: SmtpInbox) -> None:
    admin = add_staff(stack, roles=["admin"], practice_name="Invite Dental")
    browser = requests.Session()
    assert sign_in_through_portal(browser, stack.portal_url, admin).status_code == 200

    form_page = browser.get(f"{stack.portal_url}/staff/invite", timeout=10)
    assert form_page.status_code == 200
    new_id = random_id("inv.")
    email = f"{new_id}@example.test"
    invited = browser.post(
        f"{stack.portal_url}/staff/invite",
        data={
            "csrf_token": _csrf(form_page.text),
            "user_id": new_id,
            "name": "Nadia New",
            "email": email,
            "roles": "front_desk",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert invited.status_code == 302, invited.text[:500]

    message = inbox.wait_one(to=email, timeout_s=30)
    link = SmtpInbox.link(message, "/invite")
    assert link.startswith(stack.issuer)

    # The new person's own browser: set a password, enrol the authenticator, land on the dashboard.
    person = requests.Session()
    page = person.get(link, timeout=10)
    assert page.status_code == 200 and new_id in page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    password = "Violet-Canyon-Lantern-" + random_id("")[-6:]
    enroll = follow(
        person,
        person.post(
            link.split("?")[0],
            data={
                "csrf_token": _csrf(page.text),
                "token": token,
                "new_password": password,
                "confirm_password": password,
            },
            allow_redirects=False,
            timeout=10,
        ),
    )
    assert 'id="totp-secret"' in enroll.text, enroll.text[:500]
    secret = re.search(r'id="totp-secret">([^<]+)<', enroll.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    codes = person.post(
        urljoin(enroll.url, "/signin/enroll"),
        data={"csrf_token": _csrf(enroll.text), "code": pyotp.TOTP(secret).at(time.time())},
        allow_redirects=False,
        timeout=10,
    )
    assert codes.status_code == 200, codes.text[:500]
    done = follow(
        person,
        person.post(
            urljoin(enroll.url, "/signin/enroll/done"),
            data={"csrf_token": _csrf(codes.text)},
            allow_redirects=False,
            timeout=10,
        ),
    )
    assert done.status_code == 200, done.text[:500]
    assert done.url.startswith(stack.portal_url), done.url
    assert "Welcome, Nadia New" in done.text
    assert "Invite Dental" in done.text

    # The admin sees them active now.
    assert "Active" in browser.get(f"{stack.portal_url}/staff/{new_id}", timeout=10).text
