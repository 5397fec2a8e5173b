"""Every security event is written, with time, user, client address and user agent (or, for
operator commands, the actor) — and never a password, code, secret or token."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.auth.signin.support import RECOVERY_CODE, SECRET, Auth, csrf, fresh_code
from tests.support.auth_factory import make_user

pytestmark = pytest.mark.integration

IP, UA = "198.51.100.77", "events-test-browser/2.0"
ATTACKER_IP, ATTACKER_UA = "203.0.113.66", "attacker-script/0.1"
WRONG = "Not-The-Password-9187"


def test_every_security_event_is_written_with_address_and_user_agent(make_auth) -> None:
    auth: Auth = make_auth(AUTH_TRUSTED_PROXIES="1")
    user = make_user(auth.container, enrolled=False)
    owner = auth.browser(ip=IP, user_agent=UA)
    attacker = auth.browser(ip=ATTACKER_IP, user_agent=ATTACKER_UA)
    secrets_seen = [user.password, WRONG, user.totp_secret]

    # Enrollment after the password, then the recovery codes, then signed in.
    assert owner.password(user.user_id, user.password).status_code == 302
    html = owner.get("/signin/enroll").get_data(as_text=True)
    secret = SECRET.search(html).group(1).replace(" ", "")
    code = fresh_code(user, secret)
    shown = owner.post("/signin/enroll", {"csrf_token": csrf(html), "code": code})
    codes = RECOVERY_CODE.findall(shown.get_data(as_text=True))
    assert (
        owner.post("/signin/enroll/done", {"csrf_token": csrf(shown.get_data(as_text=True))}).status_code
        == 302
    )
    user.totp_secret = secret
    secrets_seen += [secret, code, *codes]

    # A wrong code, then a wrong password, from the owner's browser.
    fresh = auth.browser(ip=IP, user_agent=UA)
    assert fresh.password(user.user_id, user.password).status_code == 302
    wrong_code = f"{(int(user.code()) + 1) % 1_000_000:06d}"
    assert fresh.code(wrong_code).status_code == 401
    assert owner.password(user.user_id, WRONG).status_code == 401

    # Someone else locks unknown browsers out; the owner unlocks with the emailed link.
    for _ in range(5):
        assert attacker.password(user.user_id, WRONG).status_code == 401
    assert attacker.password(user.user_id, WRONG).status_code == 423
    [mail] = auth.outbox("account_locked", user.email)
    link = urlsplit(mail.params["unlock_url"])
    token = parse_qs(link.query)["token"][0]
    secrets_seen.append(token)
    page = owner.get(f"{link.path}?{link.query}").get_data(as_text=True)
    assert owner.post("/unlock", {"csrf_token": csrf(page), "token": token}).status_code == 200

    # The owner changes the password.
    new_password = "Harbor-Lantern-Quiet-77"
    changed = owner.form(
        "/account/password",
        current_password=user.password,
        new_password=new_password,
        confirm_password=new_password,
    )
    assert changed.status_code == 302
    secrets_seen.append(new_password)

    # Operators: suspend (the right password then meets the suspended page), reactivate.
    assert auth.cli("auth", "user", "suspend", user.user_id).returncode == 0
    assert auth.browser(ip=IP, user_agent=UA).password(user.user_id, new_password).status_code == 403
    assert auth.cli("auth", "user", "reactivate", user.user_id).returncode == 0
    user.password = new_password
    assert auth.browser(ip=IP, user_agent=UA).sign_in(user).status_code == 302

    events = auth.events(user.user_id)
    seen = [(e.event, e.outcome, e.reason) for e in events]
    expected = [
        ("sign_in.password", "ok", None),
        ("mfa.enrolled", "ok", None),
        ("sign_in.success", "ok", None),
        ("sign_in.password", "ok", None),
        ("sign_in.code", "failure", "bad_code"),
        ("sign_in.password", "failure", "bad_credentials"),
        *[("sign_in.password", "failure", "bad_credentials")] * 5,
        ("account.locked", "ok", None),
        ("sign_in.password", "refused", "locked"),
        ("account.unlocked", "ok", None),
        # The change-password page re-checks the current password like a sign-in (and under its lockout).
        ("sign_in.password", "ok", None),
        ("password.changed", "ok", None),
        ("account.suspended", "ok", None),
        ("sign_in.password", "failure", "suspended"),
        ("account.reactivated", "ok", None),
        ("sign_in.password", "ok", None),
        ("sign_in.success", "ok", None),
    ]
    assert seen == expected, "\n".join(map(str, seen))

    for event in events:
        assert event.at is not None and event.user_id == user.user_id
        assert event.practice_id == user.practice_id or event.outcome == "refused"
        if event.event in {"account.suspended", "account.reactivated"}:
            assert event.details["actor"] == "providerctl"
            continue
        expected_origin = (ATTACKER_IP, ATTACKER_UA) if event.ip == ATTACKER_IP else (IP, UA)
        assert (event.ip, event.user_agent) == expected_origin, (event.event, event.ip, event.user_agent)
    locked = [e for e in events if e.event == "account.locked"][0]
    assert (locked.ip, locked.user_agent) == (ATTACKER_IP, ATTACKER_UA)

    # providerctl shows the log.
    listing = auth.cli("auth", "events", "--user", user.user_id)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == len(expected)
    assert "account.locked" in listing.stdout and ATTACKER_IP in listing.stdout

    # Never a password, code, secret or token in the log.
    dump = "\n".join(
        " ".join(str(v) for v in (e.event, e.user_id, e.reason, e.ip, e.user_agent, e.details))
        for e in events
    )
    for secret_value in secrets_seen:
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret_value)}(?![0-9A-Za-z])", dump), secret_value
