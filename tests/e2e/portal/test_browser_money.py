"""Money in a real browser (issue 7): charge a patient's account on a promotion, refund part of
it, and see the balance and available credit change — screenshots in var/screenshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from services.common import db
from services.portal.permissions import Actor
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Account
from tests.e2e.portal.test_browser_portal import add_location
from tests.e2e.test_browser_signin import sign_in
from tests.support.stack import Stack, add_staff
from tests.unit.portal.factories import applicant

pytestmark = pytest.mark.e2e


def open_account(stack: Stack, practice_id: str) -> str:
    """An approved patient with a $3,000 limit, made through the portal's own service layer."""
    import time

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
