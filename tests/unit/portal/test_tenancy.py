"""Tenancy sweep on fakes: practice A's staff never sees practice B's data, whatever ids they send."""

from __future__ import annotations

import pytest

from services.portal.permissions import Actor
from tests.unit.portal.conftest import Harness
from tests.unit.portal.factories import applicant, make_practice
from tests.unit.portal.tenancy import Foreign, sweep
from tests.unit.portal.test_api import bearer


def _foreign(harness: Harness) -> tuple[Foreign, object]:
    b = make_practice(harness.portal.db, "Practice B")
    body = applicant(b.locations[0], first_name="Bettina", last_name="Brightwater")
    result = harness.portal.services.applications.submit(Actor("b-admin", b.practice_id, ("admin",)), body)
    number = (result.account_number or "").replace(" ", "")
    charge = {
        "account_id": result.detail.account_id,
        "location_id": b.locations[0],
        "plan_code": "DI12",
        "amount_cents": 500_00,
        "description": "Cleaning",
        "treatment_date": "2027-01-15",
    }
    charged = harness.portal.services.money.charge(
        Actor("b-admin", b.practice_id, ("admin",)), charge, "tenancy-b-charge"
    )
    foreign = Foreign(
        practice_id=b.practice_id,
        account_id=result.detail.account_id or "",
        application_id=result.detail.summary.application_id,
        location_id=b.locations[0],
        secrets=("Brightwater", number, number[-4:] + "<", "Location 1 of B", "Cleaning"),
        transaction_id=charged.transaction_id,
    )
    return foreign, b


@pytest.mark.parametrize("role", ["admin", "manager", "front_desk", "read_only"])
def test_practice_a_gets_404_and_an_audit_entry_for_every_id_of_practice_b(
    harness: Harness, role: str
) -> None:
    foreign, _ = _foreign(harness)
    a = make_practice(harness.portal.db, "Practice A")
    harness.portal.services.applications.submit(
        Actor("a-admin", a.practice_id, ("admin",)), applicant(a.locations[0])
    )
    harness.sign_in(practice_id=a.practice_id, roles=(role,))
    lines = sweep(
        harness.client, bearer(harness, a, role), foreign, a.locations[0], a.practice_id, harness.portal.db
    )
    assert len(lines) == 14


def test_a_foreign_id_looks_exactly_like_a_missing_one(harness: Harness) -> None:
    foreign, _ = _foreign(harness)
    a = make_practice(harness.portal.db, "Practice A")
    headers = bearer(harness, a)
    theirs = harness.client.get(f"/api/v1/accounts/{foreign.account_id}", headers=headers)
    missing = harness.client.get("/api/v1/accounts/acc_0000000000000000", headers=headers)
    assert (theirs.status_code, theirs.get_json()) == (missing.status_code, missing.get_json())
