"""The tenancy sweep, shared by the unit test (fakes) and the integration test (real tokens):
a user of practice A asks for practice B's ids on every page and API operation that takes one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.portal.store.models import AuditEntry


@dataclass(frozen=True)
class Foreign:
    """Practice B's objects, and what of them must never show up in A's answers."""

    practice_id: str
    account_id: str
    application_id: str
    location_id: str
    secrets: tuple[str, ...]  # holder name, last four, ids
    transaction_id: str = ""  # a charge at B (issue 7)


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    api: bool
    json: dict[str, Any] | None = None
    expect: tuple[int, ...] = (404,)
    audited_id: str | None = None  # the id an audit entry with outcome not_found must name (on a 404)
    headers: dict[str, str] | None = None


def probes(foreign: Foreign, own_location: str) -> list[Probe]:
    a, app, loc = foreign.account_id, foreign.application_id, foreign.location_id
    application = {
        "location_id": loc, "first_name": "Eve", "last_name": "Probe", "date_of_birth": "1980-01-01",
        "street": "1 Main St", "city": "Portland", "state": "OR", "zip": "97214", "email": "eve@example.test",
        "phone": "(503) 555-0100", "annual_income_cents": 60_000_00, "monthly_housing_cents": 1_000_00,
        "requested_cents": 1_000_00, "consent": True,
    }
    found = [
        Probe("page: account", "GET", f"/accounts/{a}", False, audited_id=a),
        Probe("page: application", "GET", f"/applications/{app}", False, audited_id=app),
        Probe("page: applications at B's location", "GET", f"/applications?location_id={loc}", False, expect=(200,)),
        Probe("page: accounts with ?practice_id=B", "GET", f"/accounts?practice_id={foreign.practice_id}", False, expect=(200,)),
        Probe("api: account", "GET", f"/api/v1/accounts/{a}", True, audited_id=a),
        Probe("api: account transactions", "GET", f"/api/v1/accounts/{a}/transactions", True, audited_id=a),
        Probe("api: application", "GET", f"/api/v1/applications/{app}", True, audited_id=app),
        Probe("api: applications at B's location", "GET", f"/api/v1/applications?location_id={loc}", True, expect=(200,)),
        Probe("api: accounts with ?practice_id=B", "GET", f"/api/v1/accounts?practice_id={foreign.practice_id}", True, expect=(200,)),
        # Refused as a bad field (or, for read_only, as not allowed) — never applied at B.
        Probe("api: apply at B's location", "POST", "/api/v1/applications", True, json=application, expect=(400, 403)),
    ]
    if foreign.transaction_id:
        t = foreign.transaction_id
        charge = {"location_id": own_location, "plan_code": "DI12", "amount_cents": 500_00,
                  "description": "Probe", "treatment_date": "2027-01-15"}
        # 404 (audited) for whoever may do it; 403 for a role that may not.
        found += [
            Probe("api: charge B's account", "POST", f"/api/v1/accounts/{a}/charges", True, json=charge,
                  expect=(404, 403), audited_id=a, headers={"Idempotency-Key": f"c-{t}"}),
            Probe("api: refund B's charge", "POST", f"/api/v1/transactions/{t}/refunds", True,
                  json={"amount_cents": 100}, expect=(404, 403), audited_id=t, headers={"Idempotency-Key": f"r-{t}"}),
            Probe("api: void B's charge", "POST", f"/api/v1/transactions/{t}/voids", True,
                  expect=(404, 403), audited_id=t, headers={"Idempotency-Key": f"v-{t}"}),
            Probe("api: transactions at B's location", "GET", f"/api/v1/transactions?location_id={loc}", True,
                  expect=(200,)),
        ]
    return found


def sweep(
    client: FlaskClient,
    api_headers: dict[str, str],
    foreign: Foreign,
    own_location: str,
    practice_a: str,
    db: sessionmaker[Session],
    before: Callable[[], None] = lambda: None,
) -> list[str]:
    """Run every probe; return one line per probe (``name: status``); assert as it goes."""
    lines = []
    spoof = {"X-Practice-Id": foreign.practice_id}
    for probe in probes(foreign, own_location):
        before()
        headers = {**spoof, **(api_headers if probe.api else {}), **(probe.headers or {})}
        response = client.open(probe.path, method=probe.method, json=probe.json, headers=headers)
        text = response.get_data(as_text=True)
        assert response.status_code in probe.expect, (probe.name, response.status_code, text[:300])
        for secret in foreign.secrets:
            assert secret not in text, (probe.name, secret)
        if probe.audited_id and response.status_code == 404:
            with db() as session:
                found = session.scalars(
                    select(AuditEntry).where(
                        AuditEntry.practice_id == practice_a,
                        AuditEntry.object_id == probe.audited_id,
                        AuditEntry.outcome == "not_found",
                    )
                ).all()
            assert found, f"{probe.name}: no audit entry"
        lines.append(f"{probe.name}: {response.status_code}")
    return lines
