"""The JSON API on fakes: bearer tokens only, the same rules as the service layer, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.infra import random_id
from tests.unit.portal.conftest import Harness
from tests.unit.portal.factories import PracticeFixture, applicant, make_practice


def bearer(harness: Harness, practice: PracticeFixture, *roles: str, **fields: Any) -> dict[str, str]:
    token = random_id("tok-")
    harness.verifier.issue(
        token,
        sub=random_id("sub-"),
        practice_id=practice.practice_id,
        roles=roles or ("admin",),
        exp=int(harness.clock()) + 300,
        name="API Caller",
        **fields,
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def practice(harness: Harness) -> PracticeFixture:
    return make_practice(harness.portal.db)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "bearer unknown"]
)
def test_no_valid_token_is_401_with_a_challenge_never_a_redirect(
    harness: Harness, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = harness.client.get("/api/v1/accounts", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="provider-center"')
    assert response.is_json and response.get_json()["error"] in {"unauthorized", "invalid_token"}
    if header and " " in header.strip() and header.lower().startswith("bearer"):
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "Set-Cookie" not in response.headers


def test_a_session_cookie_does_not_authenticate_the_api(harness: Harness) -> None:
    harness.sign_in(roles=("admin",))
    assert harness.client.get("/").status_code == 200
    assert harness.client.get("/api/v1/me").status_code == 401


def test_me_says_who_and_what(harness: Harness, practice: PracticeFixture) -> None:
    response = harness.client.get("/api/v1/me", headers=bearer(harness, practice, "read_only"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["practice_id"] == practice.practice_id
    assert body["permissions"] == ["account_lookup", "daily_funding_report"]
    assert response.headers["Cache-Control"] == "no-store"


def test_auth_down_is_a_json_503(harness: Harness, practice: PracticeFixture) -> None:
    headers = bearer(harness, practice)
    harness.verifier.down = True
    response = harness.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"


def test_apply_then_look_up_then_view_through_the_api(harness: Harness, practice: PracticeFixture) -> None:
    headers = bearer(harness, practice, "front_desk")
    created = harness.client.post(
        "/api/v1/applications", json=applicant(practice.locations[0]), headers=headers
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["detail"]["summary"]["status"] == "approved"
    number = body["account_number"].replace(" ", "")
    account_id = body["detail"]["account_id"]

    found = harness.client.post(
        "/api/v1/account-lookups", json={"account_number": number, "zip": "97214"}, headers=headers
    )
    assert found.status_code == 200
    [summary] = found.get_json()["items"]
    assert summary["account_id"] == account_id and summary["masked_number"].endswith(number[-4:])
    assert number not in found.get_data(as_text=True)

    account = harness.client.get(f"/api/v1/accounts/{account_id}", headers=headers).get_json()
    assert account["summary"]["available_credit_cents"] == 12_000_00
    assert account["apr"] == "26.99"
    assert number not in str(account)
    listed = harness.client.get("/api/v1/accounts?q=maya", headers=headers).get_json()
    assert listed["total"] == 1 and listed["items"][0]["account_id"] == account_id
    apps = harness.client.get("/api/v1/applications?status=approved", headers=headers).get_json()
    assert apps["total"] == 1
    one = harness.client.get(f"/api/v1/applications/{apps['items'][0]['application_id']}", headers=headers)
    assert one.status_code == 200 and one.get_json()["consent"] is True
    assert harness.client.get(f"/api/v1/accounts/{account_id}/transactions", headers=headers).get_json() == {
        "items": []
    }


def test_declined_with_reasons_through_the_api(harness: Harness, practice: PracticeFixture) -> None:
    body = applicant(practice.locations[0], date_of_birth="2012-01-01")
    response = harness.client.post(
        "/api/v1/applications", json=body, headers=bearer(harness, practice, "front_desk")
    )
    assert response.status_code == 201
    detail = response.get_json()["detail"]
    assert detail["summary"]["status"] == "declined"
    assert detail["reasons"] == ["Applicant does not meet the minimum age requirement to contract"]
    assert response.get_json()["account_number"] is None


def test_prequalification_through_the_api(harness: Harness, practice: PracticeFixture) -> None:
    body = {
        "first_name": "Ana",
        "last_name": "Reyes",
        "street": "1 Elm St",
        "city": "Portland",
        "state": "OR",
        "zip": "97214",
        "annual_income_cents": 30_000_00,
    }
    response = harness.client.post(
        "/api/v1/prequalifications", json=body, headers=bearer(harness, practice, "front_desk")
    )
    assert response.get_json() == {"first_name": "Ana", "likely": True, "estimated_limit_cents": 6_000_00}
    denied = harness.client.post(
        "/api/v1/prequalifications", json=body, headers=bearer(harness, practice, "read_only")
    )
    assert denied.status_code == 403
    assert denied.get_json()["permission"] == "prequalification"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount_cents": 10.1, "plan_code": "DI12"}, "amount_cents"),
        ({"amount_cents": "1e2", "plan_code": "DI12"}, "amount_cents"),
        ({"amount_cents": 500_00, "plan_code": "DI12", "apr": "0"}, "apr"),
        ({"amount_cents": 500_00}, "plan_code"),
        ({"amount_cents": 100_00, "plan_code": "DI12"}, "amount_cents"),  # under the $200 minimum
    ],
)
def test_bad_input_is_400_naming_the_field(
    harness: Harness, practice: PracticeFixture, body: dict, field: str
) -> None:
    response = harness.client.post(
        "/api/v1/estimates", json=body, headers=bearer(harness, practice, "front_desk")
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"
    assert field in response.get_json()["fields"]


@pytest.mark.parametrize("data", ["not json", "[1, 2]", "null", '{"a": '])
def test_a_body_that_is_not_a_json_object_is_400(
    harness: Harness, practice: PracticeFixture, data: str
) -> None:
    response = harness.client.post(
        "/api/v1/estimates", data=data, content_type="application/json", headers=bearer(harness, practice)
    )
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def test_estimate_and_plan_offers_through_the_api(harness: Harness, practice: PracticeFixture) -> None:
    desk = bearer(harness, practice, "front_desk")
    estimate = harness.client.post(
        "/api/v1/estimates", json={"plan_code": "STD", "amount_cents": 1_000_00}, headers=desk
    )
    assert estimate.status_code == 200 and estimate.get_json()["months"] == 24
    not_offered = harness.client.post(
        "/api/v1/estimates", json={"plan_code": "RA36", "amount_cents": 2_000_00}, headers=desk
    )
    assert not_offered.status_code == 404
    refused = harness.client.put("/api/v1/plans/offered", json={"plan_codes": ["RA36"]}, headers=desk)
    assert refused.status_code == 403 and refused.get_json()["permission"] == "manage_promotions"
    manager = bearer(harness, practice, "manager")
    saved = harness.client.put("/api/v1/plans/offered", json={"plan_codes": ["RA36", "STD"]}, headers=manager)
    assert [p["code"] for p in saved.get_json()["items"] if p["offered"]] == ["RA36", "STD"]
    assert (
        harness.client.post(
            "/api/v1/estimates", json={"plan_code": "RA36", "amount_cents": 2_000_00}, headers=desk
        ).status_code
        == 200
    )


def test_audit_log_through_the_api_is_for_admins(harness: Harness, practice: PracticeFixture) -> None:
    harness.client.get("/api/v1/accounts", headers=bearer(harness, practice, "read_only"))
    assert (
        harness.client.get("/api/v1/audit-log", headers=bearer(harness, practice, "manager")).status_code
        == 403
    )
    page = harness.client.get(
        "/api/v1/audit-log?action=account.list", headers=bearer(harness, practice, "admin")
    ).get_json()
    assert page["total"] == 1
    assert page["items"][0]["channel"] == "api" and page["items"][0]["actor_roles"] == "read_only"


def test_a_token_without_a_practice_gets_nothing(harness: Harness) -> None:
    token = "service-token"
    harness.verifier.issue(
        token, sub="svc", practice_id="", roles=(), exp=int(harness.clock()) + 300, client_id="svc"
    )
    response = harness.client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_the_openapi_document_is_valid_and_public(harness: Harness) -> None:
    response = harness.client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert len(operations) == 23
    for path, item in document["paths"].items():
        for operation in item.values():
            assert "401" in operation["responses"], path


def test_every_route_under_api_v1_is_in_the_document(harness: Harness) -> None:
    document = harness.client.get("/api/openapi.json").get_json()
    documented = {
        (method.upper(), "/api/v1" + path.replace("{", "<").replace("}", ">"))
        for path, item in document["paths"].items()
        for method in item
    }
    routed = {
        (method, rule.rule)
        for rule in harness.app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed == documented


def test_maintenance_answers_json(harness: Harness, practice: PracticeFixture) -> None:
    from services.common.maintenance import Maintenance

    headers = bearer(harness, practice)
    Maintenance(harness.redis, "unit:").turn_on("Back at 3 pm.")  # type: ignore[arg-type]
    response = harness.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json() == {"error": "maintenance", "message": "Back at 3 pm."}


def test_unknown_routes_and_methods_answer_json(harness: Harness, practice: PracticeFixture) -> None:
    headers = bearer(harness, practice)
    assert harness.client.get("/api/v1/nothing-here", headers=headers).get_json()["error"] == "not_found"
    wrong_method = harness.client.delete("/api/v1/accounts", headers=headers)
    assert wrong_method.status_code == 405 and wrong_method.is_json


@pytest.mark.parametrize(
    ("overrides", "status", "reasons"),
    [
        ({}, "approved", []),
        ({"monthly_housing_cents": 2_200_00}, "pending_review", []),
        ({"requested_cents": 15_000_00}, "pending_review", []),
        ({"monthly_housing_cents": 2_600_00}, "declined", ["Excessive obligations in relation to income"]),
        ({"requested_cents": 30_000_00}, "declined", ["Income insufficient for amount of credit requested"]),
        (
            {"annual_income_cents": 11_000_00, "monthly_housing_cents": 300_00, "requested_cents": 1_000_00},
            "declined",
            ["Income insufficient for amount of credit requested"],
        ),
    ],
)
def test_each_decision_rule_through_the_api(
    harness: Harness, practice: PracticeFixture, overrides: dict, status: str, reasons: list[str]
) -> None:
    response = harness.client.post(
        "/api/v1/applications",
        json=applicant(practice.locations[0], **overrides),
        headers=bearer(harness, practice, "manager"),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["detail"]["summary"]["status"] == status
    assert body["detail"]["reasons"] == reasons
    assert (body["account_number"] is not None) == (status == "approved")


def test_lookup_by_identity_through_the_api_links_and_audits(
    harness: Harness, practice: PracticeFixture
) -> None:
    other = make_practice(harness.portal.db, "Elsewhere")
    created = harness.client.post(
        "/api/v1/applications",
        json=applicant(other.locations[0], first_name="Idris", last_name="Vance", date_of_birth="1975-05-05"),
        headers=bearer(harness, other),
    ).get_json()
    headers = bearer(harness, practice, "front_desk")
    assert harness.client.get("/api/v1/accounts", headers=headers).get_json()["total"] == 0
    query = {"first_name": "Idris", "last_name": "Vance", "date_of_birth": "1975-05-05", "zip": "97214"}
    found = harness.client.post("/api/v1/account-lookups", json=query, headers=headers).get_json()["items"]
    assert [a["account_id"] for a in found] == [created["detail"]["account_id"]]
    assert harness.client.get("/api/v1/accounts", headers=headers).get_json()["total"] == 1
    log = harness.client.get(
        "/api/v1/audit-log?action=account.lookup", headers=bearer(harness, practice, "admin")
    )
    assert log.get_json()["items"][0]["object_id"] == created["detail"]["account_id"]
    assert "Vance" not in log.get_data(as_text=True)
