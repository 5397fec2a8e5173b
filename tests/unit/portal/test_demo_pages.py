"""The demo data on the pages: something to show everywhere, including the cases people ask about."""

from __future__ import annotations

import re
from datetime import date

from services.common.db import transaction
from services.portal import demo
from services.portal.store import practices
from tests.unit.portal.conftest import Harness


def test_demo_data_fills_every_page(harness: Harness) -> None:
    for practice_id, name in (("demo-dental", "Sunny Dental Group"), ("demo-vet", "Copper Fern Veterinary")):
        practices.upsert(harness.portal.db, practice_id, name)
    with transaction(harness.portal.db) as session:
        assert demo.seed(session, date(2026, 11, 26)) == 200
    harness.sign_in(practice_id="demo-dental", roles=("admin",))

    dashboard = harness.client.get("/").get_data(as_text=True)
    assert "Hawthorne" in dashboard and "Lake Oswego" in dashboard
    accounts = harness.client.get("/accounts?per_page=100").get_data(as_text=True)
    assert "Maria Alvarez" in accounts

    maria = re.search(r'href="/accounts/(acc_[0-9a-f]+)">Maria Alvarez<', accounts).group(1)  # type: ignore[union-attr]
    page = harness.client.get(f"/accounts/{maria}").get_data(as_text=True)
    assert "Promotional balances" in page and "No promotional balances" not in page
    assert "Purchase" in page and "$4,200.00" in page

    linked = [
        account_id
        for account_id in re.findall(r'href="/accounts/(acc_[0-9a-f]+)"', accounts)
        if "another provider" in harness.client.get(f"/accounts/{account_id}").get_data(as_text=True)
    ]
    assert linked, "a vet client who is a dental patient shows the vet's purchase without details"
    applications = harness.client.get("/applications?status=declined").get_data(as_text=True)
    assert "Declined" in applications
