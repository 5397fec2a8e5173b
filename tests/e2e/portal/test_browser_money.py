"""Money in a real browser (issue 7): charge a patient's account on a promotion, refund part of
it, and see the balance and available credit change; a refund over the practice's step-up
amount sends the user back to auth for a fresh second factor first — screenshots in
var/screenshots."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from services.common import db
from services.portal.permissions import Actor
from services.portal.refunds import STEP_UP_MAX_AGE_S
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Account, Practice
from tests.e2e.portal.test_browser_portal import add_location
from tests.e2e.test_browser_signin import sign_in
from tests.support.stack import Stack, add_staff
from tests.unit.portal.factories import applicant

pytestmark = pytest.mark.e2e


def open_account(stack: Stack, practice_id: str) -> str:
    """An approved patient with a $3,000 limit, made through the portal's own service layer."""
    engine = db.make_engine(stack.env["PORTAL_DATABASE_URL"])
    try:
        factory = db.session_factory(engine)
        services = Services.build(Deps(factory, time.time))
        actor = Actor("setup", practice_id, ("admin",))
        location = services.practice.locations(actor)[0].location_id
        body = applicant(location, first_name="Nora", last_name="Quill", requested_cents=3_000_00)
        account_id = services.applications.submit(actor, body).detail.account_id or ""
        with db.transaction(factory) as session:
            session.execute(
                update(Account).where(Account.account_id == account_id).values(credit_limit_cents=3_000_00)
            )
        return account_id
    finally:
        engine.dispose()


def test_charge_on_a_promotion_then_refund_part(stack: Stack, page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    stack.start()
    user = add_staff(stack, roles=["manager"], practice_name="Bright Smiles Dental")
    add_location(stack, user.practice_id, "Downtown")
    account_id = open_account(stack, user.practice_id)
    sign_in(page, stack, user)

    page.goto(f"{stack.portal_url}/accounts/{account_id}")
    assert "$3,000.00" in page.locator("main").inner_text()
    page.get_by_role("link", name="Charge a treatment").click()
    main = page.locator("main").inner_text()
    assert "No interest if paid in full within 12 months" in main  # the disclosure, before charging
    page.get_by_label("12 months deferred interest", exact=False).check()
    page.get_by_label("Location", exact=True).select_option(label="Downtown")
    page.get_by_label("Amount ($)").fill("1,200.00")
    page.get_by_label("Treatment", exact=True).fill("Crown, tooth 14")
    page.screenshot(path=str(screenshots / "portal-charge.png"), full_page=True)
    page.get_by_role("button", name="Charge Nora Quill").click()
    main = page.locator("main").inner_text()
    assert "Authorization code" in main
    assert "$1,200.00" in main and "$1,800.00" in main  # balance, available credit
    page.screenshot(path=str(screenshots / "portal-charged.png"), full_page=True)

    page.get_by_role("link", name="Refund").first.click()
    page.get_by_label("Amount ($)").fill("200.00")
    page.get_by_label("Reason").fill("Adjusted fee")
    page.get_by_role("button", name="Refund").click()
    main = page.locator("main").inner_text()
    assert "Refunded" in main and "$1,000.00" in main and "$2,000.00" in main
    page.screenshot(path=str(screenshots / "portal-refunded.png"), full_page=True)

    page.get_by_role("link", name="Transactions", exact=True).click()
    main = page.locator("main").inner_text()
    assert "Crown, tooth 14" in main and "Adjusted fee" in main
    page.screenshot(path=str(screenshots / "portal-transactions.png"), full_page=True)
    page.get_by_role("link", name="Deposits", exact=True).click()
    assert "Deposits" in page.locator("h1").inner_text()


def set_refund_step_up(stack: Stack, practice_id: str, cents: int) -> None:
    """The practice's step-up amount (``practices.refund_step_up_cents``; $500 unless set)."""
    engine = db.make_engine(stack.env["PORTAL_DATABASE_URL"])
    try:
        with db.transaction(db.session_factory(engine)) as session:
            session.execute(
                update(Practice).where(Practice.practice_id == practice_id).values(refund_step_up_cents=cents)
            )
    finally:
        engine.dispose()


def backdate_second_factor(stack: Stack, user_pk: str, seconds: int) -> None:
    """White-box: make the user's live auth sessions say both factors were given ``seconds``
    earlier than they were, as if they had signed in that long ago (auth keeps the sessions in
    Redis; the next token it issues for them carries that ``auth_time``)."""
    from services.auth.bootstrap import build
    from services.auth.settings import Settings

    container = build(Settings.from_env(stack.env))
    try:
        sessions = container.sessions.list_for_user(user_pk)
        assert sessions, "the user has no auth session"
        for auth_session in sessions:
            aged = {**auth_session.__dict__, "auth_time": auth_session.auth_time - seconds}
            container.redis.set(container.keys("sid", auth_session.sid), json.dumps(aged), keepttl=True)
    finally:
        container.engine.dispose()


def test_refund_over_the_step_up_amount_asks_for_the_second_factor_again(  # type: ignore[no-untyped-def]
    stack: Stack, page, screenshots: Path
) -> None:
    # Here, not at the top: test_browser_reports imports open_account from this module.
    from tests.e2e.portal.test_browser_reports import charge_and_settle

    stack.start()
    user = add_staff(stack, roles=["admin"], practice_name="Harbor Vision Care")
    add_location(stack, user.practice_id, "Harbor")
    account_id = open_account(stack, user.practice_id)
    charge_and_settle(stack, user.practice_id, account_id)  # $1,234.00 on 12 months deferred interest
    set_refund_step_up(stack, user.practice_id, 300_00)
    sign_in(page, stack, user)

    # The user signed in (with both factors) more than STEP_UP_MAX_AGE_S ago: auth's session
    # says so, and the portal, signed in afresh from that session without any page at auth,
    # holds a token whose auth_time is that old.
    backdate_second_factor(stack, user.user_pk, STEP_UP_MAX_AGE_S + 300)
    page.context.clear_cookies(name="pc_portal_session")
    page.goto(stack.portal_url + f"/accounts/{account_id}")
    assert page.url == stack.portal_url + f"/accounts/{account_id}"  # no sign-in page on the way
    main = page.locator("main").inner_text()
    assert "$1,234.00" in main and "$1,766.00" in main  # balance, available credit

    # Up to the practice's $300.00 that old sign-in is enough: no trip to auth.
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.get_by_role("link", name="Refund").first.click()
    page.wait_for_url("**/refund")
    refund_path = page.url.removeprefix(stack.portal_url)
    assert "Refunds over $300.00 ask you to sign in again" in page.locator("main").inner_text()
    page.get_by_label("Amount ($)").fill("100.00")
    page.get_by_label("Reason").fill("Lens coating fee waived")
    page.get_by_role("button", name="Refund").click()
    page.wait_for_url(f"{stack.portal_url}/accounts/{account_id}?**")
    main = page.locator("main").inner_text()
    assert "Refunded" in main and "$1,134.00" in main and "$1,866.00" in main
    assert not [url for url in requested if url.startswith(stack.issuer)]

    # Over it: the portal sends the browser to auth, which asks for both factors afresh.
    page.goto(stack.portal_url + refund_path)
    page.get_by_label("Amount ($)").fill("400.00")
    page.get_by_label("Reason").fill("Frames returned")
    page.get_by_role("button", name="Refund").click()
    page.wait_for_url(stack.issuer + "/signin**")
    to_login = next(url for url in requested if url.startswith(stack.portal_url + "/login?"))
    assert "reauth=1" in to_login and f"max_age={STEP_UP_MAX_AGE_S}" in to_login, to_login
    authorize = next(url for url in requested if url.startswith(stack.issuer) and "max_age=" in url)
    assert "prompt=login" in authorize and f"max_age={STEP_UP_MAX_AGE_S}" in authorize, authorize
    assert page.get_by_label("Password").is_visible()
    # Auth says why it asks again, and who for (the portal's login_hint).
    assert "Sign in again" in page.locator("h1").inner_text()
    assert page.get_by_label("User ID").input_value() == user.user_id
    page.screenshot(path=str(screenshots / "auth-step-up.png"))
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    # The code of the next 30-second step: auth takes each step's code once (the first
    # sign-in used this step's), and accepts ±1 step.
    page.get_by_label("Verification code").fill(user.code(time.time() + 30))
    page.screenshot(path=str(screenshots / "auth-step-up-code.png"))
    page.get_by_role("button", name="Verify").click()

    # Back at the refund form, the amount kept, with a fresh sign-in: the refund goes through.
    page.wait_for_url(stack.portal_url + refund_path + "?amount=400.00")
    assert page.get_by_label("Amount ($)").input_value() == "400.00"
    page.get_by_label("Reason").fill("Frames returned")
    page.get_by_role("button", name="Refund").click()
    page.wait_for_url(f"{stack.portal_url}/accounts/{account_id}?**")
    main = page.locator("main").inner_text()
    assert "Refunded" in main and "$734.00" in main and "$2,266.00" in main
    page.screenshot(path=str(screenshots / "portal-refunded-after-step-up.png"), full_page=True)

    page.get_by_role("link", name="Transactions", exact=True).click()
    main = page.locator("main").inner_text()
    assert "Frames returned" in main and "$400.00" in main
    assert "Lens coating fee waived" in main and "$100.00" in main

    # The audit log has the refused attempt (step-up) and the refund.
    page.get_by_role("link", name="Activity", exact=True).click()
    page.get_by_label("Action").select_option("refund.create")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table tbody tr").all_inner_texts()
    assert len(rows) == 3, rows
    after_step_up, step_up, small = rows  # newest first
    assert "Step up" in step_up and "over 30000 cents" in step_up
    assert "Ok" in after_step_up and "Ok" in small
    page.screenshot(path=str(screenshots / "portal-activity-step-up.png"), full_page=True)
