"""Reports in a real browser (issue 8): a purchase and its deposit, then the financed-volume report
shows its SVG chart (visible, accessible name), the table below it and a CSV download."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.common import db
from services.portal.permissions import Actor
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from tests.e2e.portal.test_browser_money import open_account
from tests.e2e.portal.test_browser_portal import add_location
from tests.e2e.test_browser_signin import sign_in
from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.e2e


def charge_and_settle(stack: Stack, practice_id: str, account_id: str) -> None:
    engine = db.make_engine(stack.env["PORTAL_DATABASE_URL"])
    try:
        factory = db.session_factory(engine)
        services = Services.build(Deps(factory, time.time))
        actor = Actor("setup", practice_id, ("admin",))
        location = services.practice.locations(actor)[0].location_id
        today = datetime.now(UTC).date()
        body = {
            "account_id": account_id,
            "location_id": location,
            "plan_code": "DI12",
            "amount_cents": 1_234_00,
            "description": "Crown, tooth 14",
            "treatment_date": today.isoformat(),
        }
        services.money.charge(actor, body, f"e2e-report-{account_id}")
        services.money.settle(today)
    finally:
        engine.dispose()


def test_a_report_chart_table_and_csv(stack: Stack, page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    stack.start()
    user = add_staff(stack, roles=["manager"], practice_name="Bright Smiles Dental")
    add_location(stack, user.practice_id, "Downtown")
    account_id = open_account(stack, user.practice_id)
    charge_and_settle(stack, user.practice_id, account_id)
    sign_in(page, stack, user)

    page.get_by_role("link", name="Reports", exact=True).click()
    page.get_by_role("link", name="Financed volume by month").click()
    chart = page.get_by_role("img", name="Financed volume by month", exact=False)
    assert chart.is_visible()
    table = page.locator("table").inner_text()
    assert "$1,234.00" in table
    page.screenshot(path=str(screenshots / "portal-report-volume.png"), full_page=True)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    content = Path(download_info.value.path()).read_text()
    assert "123400,1234.00" in content

    page.goto(page.url.replace("financed-volume", "funding"))
    assert page.get_by_role("img", name="Merchant fees and net deposits", exact=False).is_visible()
    assert "$122.17" in page.locator("table").inner_text()  # 9.90% of $1,234.00, half to even
    page.screenshot(path=str(screenshots / "portal-report-funding.png"), full_page=True)
