"""Sign-in through auth's real app (Flask test client), real Redis and a real database:
the second factor, lockout, unlock, throttling, device awareness, suspension, enrollment."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import update

from services.auth import accounts, recovery_codes
from services.auth.store.models import User
from services.common.db import transaction, utcnow
from tests.integration.auth.signin.support import (
    BAD_CREDENTIALS_TEXT,
    LOCKED_TEXT,
    RECOVERY_CODE,
    SECRET,
    Auth,
    Browser,
    csrf,
    fresh_code,
)
from tests.support.auth_factory import TestUser as AuthUser
from tests.support.auth_factory import make_user
from tests.support.infra import random_id

pytestmark = pytest.mark.integration

WRONG = "Wrong-Password-" + "x" * 8


def text(response) -> str:
    return response.get_data(as_text=True)


def comparable(html: str, *user_ids: str) -> str:
    """A page with what legitimately differs between two requests taken out."""
    html = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', html)
    html = re.sub(r"Reference: \w+", "Reference:", html)
    # The lock's end, to the minute: two locks a moment apart may straddle a minute.
    html = re.sub(r"\(after \d\d:\d\d UTC\)", "(after HH:MM UTC)", html)
    for user_id in user_ids:
        html = html.replace(user_id, "USER")
    return html


def fail_password(browser: Browser, user_id: str, times: int, expected: int = 401) -> list:
    responses = []
    for _ in range(times):
        response = browser.password(user_id, WRONG)
        assert response.status_code == expected, (response.status_code, text(response)[:500])
        responses.append(response)
    return responses


def assert_locked_page(response) -> None:
    assert response.status_code == 423
    body = text(response)
    assert LOCKED_TEXT in body
    assert re.search(r"Try again in \d+ minutes? \(after \d\d:\d\d UTC\)", body), body
    assert int(response.headers["Retry-After"]) > 0
    assert BAD_CREDENTIALS_TEXT not in body
    assert "support" in body


def sign_in_ok(browser: Browser, user: AuthUser) -> None:
    done = browser.sign_in(user)
    assert done.status_code == 302, (done.status_code, text(done)[:800])
    assert urlsplit(done.headers["Location"]).path == "/"


# --- the second factor ---------------------------------------------------------------------


def test_a_used_code_is_refused_the_second_time(auth: Auth) -> None:
    user = make_user(auth.container)
    code = fresh_code(user)
    sign_in_ok_with = auth.browser().sign_in(user, code)
    assert sign_in_ok_with.status_code == 302

    again = auth.browser()
    assert again.password(user.user_id, user.password).status_code == 302
    replay = again.code(code)
    assert replay.status_code == 401
    assert 'role="alert"' in text(replay)
    assert "verification code is not right" in text(replay)
    [event] = auth.events(user.user_id, "sign_in.code")
    assert (event.outcome, event.reason) == ("failure", "replayed_code")
    # The right, fresh code still works in that same browser.
    done = again.code(fresh_code(user))
    assert done.status_code == 302


def test_a_recovery_code_works_in_the_code_input_once(auth: Auth) -> None:
    user = make_user(auth.container)
    with transaction(auth.container.db) as db:
        codes = recovery_codes.issue(db, auth.container.settings.totp_key, user.user_pk)
    assert len(codes) == 10 and len(set(codes)) == 10

    done = auth.browser().sign_in(user, codes[3].upper().replace("-", " "))
    assert done.status_code == 302
    [success] = auth.events(user.user_id, "sign_in.success")
    assert success.details["factor"] == "rc"

    again = auth.browser()
    assert again.password(user.user_id, user.password).status_code == 302
    assert again.code(codes[3]).status_code == 401
    assert again.code(codes[4]).status_code == 302
    with auth.container.db() as db:
        assert recovery_codes.remaining(db, user.user_pk) == 8


def test_regenerated_recovery_codes_void_the_old_set(auth: Auth) -> None:
    user = make_user(auth.container)
    key = auth.container.settings.totp_key
    with transaction(auth.container.db) as db:
        old = recovery_codes.issue(db, key, user.user_pk)
    with transaction(auth.container.db) as db:
        assert recovery_codes.redeem(db, key, user.user_pk, old[0])
        assert not recovery_codes.redeem(db, key, user.user_pk, old[0])
    with transaction(auth.container.db) as db:
        new = recovery_codes.issue(db, key, user.user_pk)
    with transaction(auth.container.db) as db:
        assert not recovery_codes.redeem(db, key, user.user_pk, old[1])
        assert recovery_codes.redeem(db, key, user.user_pk, new[1])
        assert recovery_codes.remaining(db, user.user_pk) == 9
    # Stored hashed: no code appears in the table.
    with auth.container.db() as db:
        stored = " ".join(row.code_hash for row in db.query(recovery_codes.RecoveryCode).all())
    assert not any(code.replace("-", "") in stored or code in stored for code in old + new)


# --- lockout -----------------------------------------------------------------------------------


def test_lockout_threshold_is_exact_and_the_right_password_is_refused_while_locked(auth: Auth) -> None:
    user = make_user(auth.container)
    attacker = auth.browser()
    fail_password(attacker, user.user_id, 4)
    fifth = attacker.password(user.user_id, WRONG)
    assert fifth.status_code == 401, "the fifth attempt reaches the password check and fails"

    right = auth.browser().password(user.user_id, user.password)
    assert_locked_page(right)
    assert "Try again in 1 minute (after" in text(right)
    wrong = auth.browser().password(user.user_id, WRONG)
    assert_locked_page(wrong)
    # The page is the same whether the password was right or not.
    assert comparable(text(right)) == comparable(text(wrong))

    checked = auth.events(user.user_id, "sign_in.password")
    assert [(e.outcome, e.reason) for e in checked] == [("failure", "bad_credentials")] * 5 + [
        ("refused", "locked")
    ] * 2
    [locked] = auth.events(user.user_id, "account.locked")
    assert locked.details["failures"] == 5


def test_attempts_while_locked_do_not_extend_it_and_the_owner_is_emailed_once(auth: Auth) -> None:
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 5)
    until = auth.lockout.locked_until(user.user_id, None)
    assert until is not None
    for _ in range(5):
        assert_locked_page(auth.browser().password(user.user_id, WRONG))
    assert auth.lockout.locked_until(user.user_id, None) == until
    [mail] = auth.outbox("account_locked", user.email)
    assert mail.params["unlock_url"].startswith(auth.container.settings.issuer + "/unlock?token=")
    assert mail.params["locked_until"].endswith("UTC")
    assert mail.params["support_phone"] and mail.params["support_email"]
    assert len(auth.events(user.user_id, "account.locked")) == 1


def test_unlock_by_the_emailed_link_works_once(auth: Auth) -> None:
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 5)
    [mail] = auth.outbox("account_locked", user.email)
    link = urlsplit(mail.params["unlock_url"])
    path = f"{link.path}?{link.query}"

    owner = auth.browser()
    page = owner.get(path)
    assert page.status_code == 200
    assert "Unlock my account" in text(page) and "<button" in text(page)
    assert auth.lockout.locked_until(user.user_id, None) is not None, "a GET (mail scanners) must not unlock"
    token = re.search(r'name="token" value="([^"]+)"', text(page)).group(1)
    done = owner.post("/unlock", {"csrf_token": csrf(text(page)), "token": token})
    assert done.status_code == 200 and "unlocked" in text(done)
    sign_in_ok(auth.browser(), user)

    again = owner.post("/unlock", {"csrf_token": csrf(text(page)), "token": token})
    assert again.status_code == 400 and "no longer valid" in text(again)
    assert owner.get(path).status_code == 400
    [event] = auth.events(user.user_id, "account.unlocked")
    assert event.details == {"via": "email_link"} and event.ip and event.user_agent


def test_unlock_by_providerctl(auth: Auth) -> None:
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 5)
    assert_locked_page(auth.browser().password(user.user_id, user.password))
    result = auth.cli("auth", "user", "unlock", user.user_id)
    assert result.returncode == 0, result.stderr
    assert f"{user.user_id} unlocked" in result.stdout
    sign_in_ok(auth.browser(), user)
    [event] = auth.events(user.user_id, "account.unlocked")
    assert event.details == {"actor": "providerctl"}


def test_failures_are_forgotten_after_a_completed_sign_in(auth: Auth) -> None:
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 4)
    sign_in_ok(auth.browser(), user)
    fail_password(auth.browser(), user.user_id, 4)
    sign_in_ok(auth.browser(), user)
    assert auth.events(user.user_id, "account.locked") == []


def test_a_right_password_after_the_lock_ends_signs_in(auth: Auth) -> None:
    """The lock is real time here, so end it as the clock would: its counter's lock field expires."""
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 5)
    counter = auth.container.keys("lock", "pwd", user.user_id, "unknown")
    auth.container.redis.hset(counter, "locked_until", int(time.time()) - 1)
    sign_in_ok(auth.browser(), user)


def test_wrong_codes_count_and_lock_every_browser(auth: Auth) -> None:
    user = make_user(auth.container)
    browser = auth.browser()
    assert browser.password(user.user_id, user.password).status_code == 302
    wrong_totp = f"{(int(user.code()) + 500_000) % 1_000_000:06d}"
    for wrong in (wrong_totp, "abcd-efgh-jkmn-pqrs", wrong_totp, "zzzz-yyyy-xxxx-wwww", wrong_totp):
        assert browser.code(wrong).status_code == 401
    assert_locked_page(browser.code(fresh_code(user)))
    assert_locked_page(auth.browser().password(user.user_id, user.password))
    reasons = [(e.outcome, e.reason) for e in auth.events(user.user_id, "sign_in.code")]
    assert reasons == [("failure", "bad_code")] * 5 + [("refused", "locked")]
    assert len(auth.outbox("account_locked", user.email)) == 1


def test_unknown_user_ids_are_counted_and_locked_like_known_ones(auth: Auth) -> None:
    user = make_user(auth.container)
    ghost = random_id("u.")
    known, unknown = auth.browser(), auth.browser()
    for _ in range(5):
        a = known.password(user.user_id, WRONG)
        b = unknown.password(ghost, WRONG)
        assert a.status_code == b.status_code == 401
        assert comparable(text(a), user.user_id) == comparable(text(b), ghost)
    a = known.password(user.user_id, WRONG)
    b = unknown.password(ghost, WRONG)
    assert_locked_page(a)
    assert_locked_page(b)
    assert comparable(text(a), user.user_id) == comparable(text(b), ghost)
    assert len(auth.events(ghost, "account.locked")) == 1
    assert len(auth.events(ghost, "sign_in.password")) == 6


def test_permanent_lockout_page_points_to_an_administrator(make_auth) -> None:
    auth = make_auth(AUTH_LOCKOUT_PERMANENT="1")
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 5)
    locked = auth.browser().password(user.user_id, user.password)
    assert locked.status_code == 423
    assert "account administrator or Provider Center support can unlock it" in text(locked)
    [mail] = auth.outbox("account_locked", user.email)
    assert mail.params["locked_until"] == "an administrator or support unlocks it"
    accounts.apply(auth.container, "unlock", user.user_id, actor="test")
    sign_in_ok(auth.browser(), user)


# --- per address, per device ----------------------------------------------------------------


def test_per_address_throttle_answers_429_without_locking_the_victim_elsewhere(make_auth) -> None:
    auth = make_auth(AUTH_ADDRESS_MAX_FAILURES="3", AUTH_TRUSTED_PROXIES="1")
    victim = make_user(auth.container)
    stuffing = auth.browser(ip="203.0.113.50")
    for user_id in (victim.user_id, random_id("u."), random_id("u.")):
        assert stuffing.password(user_id, WRONG).status_code == 401
    throttled = stuffing.password(random_id("u."), WRONG)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 600
    assert "too many unsuccessful sign-in attempts from your network" in text(throttled)
    assert stuffing.password(victim.user_id, victim.password).status_code == 429

    sign_in_ok(auth.browser(ip="198.51.100.20"), victim)
    refused = auth.events(event="sign_in.password")
    assert [(e.reason, e.ip) for e in refused if e.outcome == "refused"] == [
        ("throttled", "203.0.113.50")
    ] * 2


def test_forwarded_for_is_ignored_without_a_trusted_proxy(make_auth) -> None:
    auth = make_auth(AUTH_ADDRESS_MAX_FAILURES="2")
    for n in range(2):
        assert auth.browser(ip=f"198.51.100.{n}").password(random_id("u."), WRONG).status_code == 401
    assert auth.browser(ip="198.51.100.99").password(random_id("u."), WRONG).status_code == 429


def test_failures_from_unknown_browsers_do_not_lock_out_the_trusted_browser(auth: Auth) -> None:
    user = make_user(auth.container)
    trusted = auth.browser(user_agent="owner-browser")
    sign_in_ok(trusted, user)
    assert trusted.device_cookie()

    attacker = auth.browser(user_agent="attacker")
    fail_password(attacker, user.user_id, 5)
    assert_locked_page(attacker.password(user.user_id, user.password))
    assert_locked_page(auth.browser().password(user.user_id, user.password))
    [locked] = auth.events(user.user_id, "account.locked")
    assert locked.details["device"] == "unknown"

    sign_in_ok(trusted, user)


def test_a_trusted_browser_counts_its_own_failures(auth: Auth) -> None:
    user = make_user(auth.container)
    trusted = auth.browser()
    sign_in_ok(trusted, user)
    fail_password(trusted, user.user_id, 5)
    assert_locked_page(trusted.password(user.user_id, user.password))
    [locked] = auth.events(user.user_id, "account.locked")
    assert locked.details["device"] == "trusted"
    [mail] = auth.outbox("account_locked", user.email)
    assert mail.params["locked_until"].endswith("UTC"), mail.params["locked_until"]
    # Other browsers were not locked out by the trusted one's failures.
    sign_in_ok(auth.browser(), user)


def test_a_forged_device_cookie_is_an_unknown_browser(auth: Auth) -> None:
    user = make_user(auth.container)
    fail_password(auth.browser(), user.user_id, 5)
    forger = auth.browser()
    forger.client.set_cookie("pc_auth_device", "eyJkIjoiZGV2IiwidSI6WyJ1In19.forged.signature")
    assert_locked_page(forger.password(user.user_id, user.password))


# --- account status ------------------------------------------------------------------------------


def test_suspended_user_learns_it_only_after_the_right_password(auth: Auth) -> None:
    user = make_user(auth.container)
    accounts.apply(
        auth.container, "suspend", user.user_id, actor="test"
    )  # providerctl: in test_security_events

    wrong = auth.browser().password(user.user_id, WRONG)
    assert wrong.status_code == 401 and BAD_CREDENTIALS_TEXT in text(wrong)
    assert "suspended" not in text(wrong)
    right = auth.browser().password(user.user_id, user.password)
    assert right.status_code == 403
    assert "Contact your practice's account administrator" in text(right)
    assert "Location" not in right.headers

    accounts.apply(auth.container, "reactivate", user.user_id, actor="test")
    sign_in_ok(auth.browser(), user)


def test_suspend_inactive_suspends_accounts_unused_for_90_days(auth: Auth) -> None:
    stale, recent, fresh = (make_user(auth.container) for _ in range(3))
    with transaction(auth.container.db) as db:
        db.execute(
            update(User).where(User.id == stale.user_pk).values(last_sign_in_at=utcnow() - timedelta(days=91))
        )
        db.execute(
            update(User)
            .where(User.id == recent.user_pk)
            .values(last_sign_in_at=utcnow() - timedelta(days=89))
        )
    result = auth.cli("auth", "suspend-inactive", "--days", "90")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"1 account(s) suspended for inactivity: {stale.user_id}"
    assert auth.user(stale.user_id).status == "suspended"
    assert auth.user(recent.user_id).status == auth.user(fresh.user_id).status == "active"
    assert auth.browser().password(stale.user_id, stale.password).status_code == 403
    [event] = auth.events(stale.user_id, "account.suspended")
    assert event.reason == "inactivity"
    assert event.details == {"days": 90, "actor": "suspend-inactive"}


# --- enrollment -----------------------------------------------------------------------------------


def enroll(browser: Browser, user: AuthUser) -> tuple[str, list[str]]:
    """Walk enrollment after the password; returns the secret and the recovery codes shown."""
    first = browser.password(user.user_id, user.password)
    assert first.status_code == 302 and first.headers["Location"].endswith("/signin/enroll")
    page = browser.get("/signin/enroll")
    html = text(page)
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in html
    secret = SECRET.search(html).group(1).replace(" ", "")
    assert len(secret) == 32
    shown = browser.post("/signin/enroll", {"csrf_token": csrf(html), "code": fresh_code(user, secret)})
    assert shown.status_code == 200, text(shown)[:500]
    codes = RECOVERY_CODE.findall(text(shown))
    done = browser.post("/signin/enroll/done", {"csrf_token": csrf(text(shown))})
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == "/"
    return secret, codes


def test_enrollment_shows_the_secret_then_10_recovery_codes_then_signs_in(auth: Auth) -> None:
    user = make_user(auth.container, enrolled=False)
    browser = auth.browser()
    # Nothing but enrollment is reachable before it.
    assert browser.password(user.user_id, user.password).status_code == 302
    assert browser.get("/signin/verify").status_code == 302
    wrong = browser.form("/signin/enroll", code="000000")
    assert wrong.status_code == 401 and 'role="alert"' in text(wrong)

    secret, codes = enroll(auth.browser(), user)
    assert len(codes) == 10 and len(set(codes)) == 10
    user.totp_secret = secret
    assert auth.browser().get("/").status_code == 302
    assert len(auth.events(user.user_id, "mfa.enrolled")) == 1
    assert auth.outbox("mfa_changed", user.email)

    sign_in_ok(auth.browser(), user)
    assert auth.browser().sign_in(user, codes[0]).status_code == 302


def test_the_enrollment_code_cannot_be_replayed(auth: Auth) -> None:
    user = make_user(auth.container, enrolled=False)
    browser = auth.browser()
    browser.password(user.user_id, user.password)
    html = text(browser.get("/signin/enroll"))
    secret = SECRET.search(html).group(1).replace(" ", "")
    code = fresh_code(user, secret)
    shown = browser.post("/signin/enroll", {"csrf_token": csrf(html), "code": code})
    assert shown.status_code == 200
    browser.post("/signin/enroll/done", {"csrf_token": csrf(text(shown))})

    other = auth.browser()
    assert other.password(user.user_id, user.password).status_code == 302
    assert other.code(code).status_code == 401


def test_reset_mfa_sends_the_user_through_enrollment_again(auth: Auth) -> None:
    user = make_user(auth.container)
    with transaction(auth.container.db) as db:
        old_codes = recovery_codes.issue(db, auth.container.settings.totp_key, user.user_pk)
    signed_in = auth.browser()
    sign_in_ok(signed_in, user)

    result = auth.cli("auth", "user", "reset-mfa", user.user_id)
    assert result.returncode == 0, result.stderr
    [reset] = auth.events(user.user_id, "mfa.reset")
    assert reset.details == {"actor": "providerctl"}
    assert signed_in.get("/").status_code == 302, "reset ends the user's sessions"
    with auth.container.db() as db:
        assert recovery_codes.remaining(db, user.user_pk) == 0
    new_secret, _codes = enroll(auth.browser(), user)
    assert new_secret != user.totp_secret
    user.totp_secret = new_secret
    sign_in_ok(auth.browser(), user)
    browser = auth.browser()
    browser.password(user.user_id, user.password)
    assert browser.code(old_codes[0]).status_code == 401


# --- passwords ----------------------------------------------------------------------------------


def test_weaker_argon2_hash_is_upgraded_at_sign_in(auth: Auth) -> None:
    user = make_user(auth.container)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(user.password)
    with transaction(auth.container.db) as db:
        db.execute(update(User).where(User.id == user.user_pk).values(password_hash=weak))
    sign_in_ok(auth.browser(), user)
    upgraded = auth.user(user.user_id).password_hash
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert auth.container.passwords.verify(upgraded, user.password)

    stronger = PasswordHasher().hash(user.password)
    with transaction(auth.container.db) as db:
        db.execute(update(User).where(User.id == user.user_pk).values(password_hash=stronger))
    sign_in_ok(auth.browser(), user)
    assert auth.user(user.user_id).password_hash == stronger


def test_change_password_checks_current_policy_and_keeps_nfkc(auth: Auth) -> None:
    user = make_user(auth.container)
    browser = auth.browser()
    sign_in_ok(browser, user)

    def change(current: str, new: str, confirm: str | None = None):
        return browser.form(
            "/account/password",
            current_password=current,
            new_password=new,
            confirm_password=new if confirm is None else confirm,
        )

    assert change(WRONG, "Lantern-Quiet-Harbor").status_code == 400
    common = change(user.password, "password1234")
    assert common.status_code == 400 and "most commonly used passwords" in text(common)
    short = change(user.password, "Short-1")
    assert short.status_code == 400 and "at least 12 characters" in text(short)
    mine = change(user.password, f"my {user.user_id} secret")
    assert mine.status_code == 400 and "must not contain your User ID" in text(mine)
    assert change(user.password, "Lantern-Quiet-Harbor", "Lantern-Quiet-Harbo").status_code == 400

    # Full-width letters and a decomposed accent: typed the same way again, it must work.
    new = "ｌａｎｔｅｒｎ cafe\u0301 harbor"
    done = change(user.password, new)
    assert done.status_code == 302, text(done)[:500]
    [event] = auth.events(user.user_id, "password.changed")
    assert event.ip and event.user_agent
    assert auth.outbox("password_changed", user.email)

    assert auth.browser().password(user.user_id, user.password).status_code == 401
    user.password = new
    sign_in_ok(auth.browser(), user)
    user.password = "lantern café harbor"
    sign_in_ok(auth.browser(), user)
