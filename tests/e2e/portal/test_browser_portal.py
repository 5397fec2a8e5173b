"""The front desk's day in a real browser: prequalify a patient, apply, look up the new
account, estimate a plan — and screenshots of the main pages (var/screenshots)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import insert

from services.common import db
from services.portal.service_layer.unit import new_id
from services.portal.store.models import Location
from tests.e2e.test_browser_signin import sign_in
from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.e2e


def add_location(stack: Stack, practice_id: str, name: str) -> None:
    engine = db.make_engine(stack.env["PORTAL_DATABASE_URL"])
    try:
        with db.transaction(db.session_factory(engine)) as session:
            session.execute(
                insert(Location).values(
                    location_id=new_id("loc"),
                    practice_id=practice_id,
                    name=name,
                    street="410 SW Alder St",
                    city="Portland",
                    state="OR",
                    zip="97204",
                    phone="(503) 555-0141",
                )
            )
    finally:
        engine.dispose()


def test_prequalify_apply_look_up_and_estimate(stack: Stack, page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    stack.start()
    user = add_staff(stack, roles=["admin"], practice_name="Bright Smiles Dental")
    add_location(stack, user.practice_id, "Downtown")
    sign_in(page, stack, user)
    page.screenshot(path=str(screenshots / "portal-dashboard.png"), full_page=True)

    # Prequalify: a soft check, nothing kept.
    page.get_by_role("link", name="Prequalify", exact=True).click()
    page.get_by_label("First name").fill("Rosa")
    page.get_by_label("Last name").fill("Delgado")
    page.get_by_label("Street address").fill("12 Oak St")
    page.get_by_label("City", exact=True).fill("Portland")
    page.get_by_label("State", exact=True).select_option("OR")
    page.get_by_label("ZIP code").fill("97214")
    page.get_by_label("Annual income before tax ($)").fill("58,000")
    page.get_by_role("button", name="Check").click()
    assert "Rosa is likely to be approved" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "portal-prequalify.png"), full_page=True)

    # Apply, with the patient's consent: approved at once, the number shown this once.
    page.get_by_role("link", name="Apply now").click()
    page.get_by_label("Location", exact=True).select_option(label="Downtown")
    page.get_by_label("First name").fill("Rosa")
    page.get_by_label("Last name").fill("Delgado")
    page.get_by_label("Date of birth").fill("1984-07-21")
    page.get_by_label("Email", exact=True).fill("rosa@example.test")
    page.get_by_label("Phone", exact=True).fill("(503) 555-0123")
    page.get_by_label("Street address").fill("12 Oak St")
    page.get_by_label("City", exact=True).fill("Portland")
    page.get_by_label("State", exact=True).select_option("OR")
    page.get_by_label("ZIP code").fill("97214")
    page.get_by_label("Annual income before tax ($)").fill("58,000")
    page.get_by_label("Monthly rent or mortgage ($)").fill("1,450")
    page.get_by_label("Amount requested ($)").fill("4,200")
    page.get_by_label("The patient has read this statement and agrees").check()
    page.get_by_role("button", name="Submit application").click()
    main = page.locator("main").inner_text()
    assert "Decision: Approved" in main and "$11,600.00" in main
    number = re.sub(r"\D", "", page.locator(".account-number").inner_text())
    assert len(number) == 16
    page.screenshot(path=str(screenshots / "portal-application-approved.png"), full_page=True)

    # Look the new account up as for a patient at the desk.
    page.get_by_role("link", name="Accounts", exact=True).click()
    page.get_by_role("link", name="Look up an account").first.click()
    page.get_by_label("Account number").fill(number)
    page.get_by_label("ZIP code").fill("97214")
    page.screenshot(path=str(screenshots / "portal-lookup.png"), full_page=True)
    page.get_by_role("button", name="Look up").click()
    main = page.locator("main").inner_text()
    assert "Rosa Delgado" in main and f"•••• {number[-4:]}" in main and number not in main
    assert "$11,600.00" in main  # available credit
    page.screenshot(path=str(screenshots / "portal-account.png"), full_page=True)

    # Estimate a plan.
    page.get_by_role("link", name="Plans & estimator").click()
    page.get_by_label("Plan", exact=True).select_option(label="12 months deferred interest")
    page.get_by_label("Purchase amount ($)").fill("4,200")
    page.get_by_role("button", name="Estimate").click()
    main = page.locator("main").inner_text()
    assert "$350.00 a month for 12 months" in main
    page.screenshot(path=str(screenshots / "portal-plans.png"), full_page=True)

    page.get_by_role("link", name="Applications", exact=True).click()
    page.screenshot(path=str(screenshots / "portal-applications.png"), full_page=True)
    page.get_by_role("link", name="Activity", exact=True).click()
    assert "account.lookup" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "portal-activity.png"), full_page=True)


def test_demo_data_on_every_page(stack: Stack, page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    """What `make run` shows: the demo seed, signed in as demo.admin (the README's screenshots)."""
    from services import seed
    from tests.support.auth_factory import TestUser

    seed.seed_demo(stack.env)
    stack.start()
    demo = next(u for u in seed.DEMO_USERS if u.user_id == "demo.admin")
    user = TestUser(demo.user_id, demo.password, demo.totp_secret, demo.practice_id, "", demo.name, "")
    sign_in(page, stack, user)
    assert "Hawthorne" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "demo-dashboard.png"), full_page=True)

    page.get_by_role("link", name="Accounts", exact=True).click()
    assert "Page 1 of" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "demo-accounts.png"), full_page=True)
    page.get_by_role("link", name="Maria Alvarez").click()
    main = page.locator("main").inner_text()
    assert "deferred interest" in main and "No promotional balances" not in main
    page.screenshot(path=str(screenshots / "demo-account.png"), full_page=True)

    page.get_by_role("link", name="Applications", exact=True).click()
    page.get_by_label("Decision").select_option("declined")
    page.get_by_role("button", name="Filter").click()
    page.screenshot(path=str(screenshots / "demo-applications.png"), full_page=True)
    page.locator("table a").first.click()
    assert "Decision: Declined" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "demo-application-declined.png"), full_page=True)

    page.get_by_role("link", name="Activity", exact=True).click()
    assert "application.view" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "demo-activity.png"), full_page=True)
