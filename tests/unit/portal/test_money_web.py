"""Issue 7 in the web layer (fakes): error answers, the money API operations, the money pages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from services.portal.errors import IdempotencyInFlight, IdempotencyMismatch, StepUpRequired
from services.portal.web import answers
from tests.unit.portal.conftest import Harness


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_idempotency_errors_are_422_and_409_never_5xx(harness: Harness) -> None:
    with harness.app.test_request_context("/api/v1/accounts/x/charges", method="POST"):
        assert answers.key_reused(IdempotencyMismatch("x")).status_code == 422
        busy = answers.in_flight(IdempotencyInFlight("x"))
        assert busy.status_code == 409 and busy.get_json()["error"] == "idempotency_key_in_use"
    with harness.app.test_request_context("/transactions/x/refund", method="POST"):
        assert answers.key_reused(IdempotencyMismatch("x")).status_code == 422


def test_step_up_is_an_rfc_9470_challenge_for_the_api(harness: Harness) -> None:
    with harness.app.test_request_context("/api/v1/transactions/x/refunds", method="POST"):
        response = answers.step_up(StepUpRequired(300))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent sign-in is required", max_age=300'
    )
    assert response.get_json()["error"] == "insufficient_user_authentication"


def test_step_up_on_a_page_signs_in_again_at_auth_and_comes_back(harness: Harness) -> None:
    harness.sign_in(roles=("admin",))
    with harness.app.test_request_context("/transactions/txn_1/refund", method="POST"):
        response = answers.step_up(StepUpRequired(300))
    assert response.status_code == 302
    to_login = response.headers["Location"]
    assert _query(to_login) == {"next": "/transactions/txn_1/refund", "reauth": "1", "max_age": "300"}
    # Even though the browser is signed in, /login goes to auth, which must ask again.
    to_auth = harness.client.get(to_login)
    assert to_auth.status_code == 302
    query = _query(to_auth.headers["Location"])
    assert query["prompt"] == "login" and query["max_age"] == "300"
    assert "login_hint" not in query  # a session from before the User ID was kept
    with harness.client.session_transaction() as session:
        session["signed_in"] = {**session["signed_in"], "user_id": "dana.admin"}
    query = _query(harness.client.get(to_login).headers["Location"])
    assert query["login_hint"] == "dana.admin"  # auth fills it in and says it asks again
    # Without max_age a signed-in browser is simply sent on.
    plain = harness.client.get("/login?next=/accounts")
    assert plain.headers["Location"].endswith("/accounts")


# --- the money API ------------------------------------------------------------------------------

import itertools  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import update  # noqa: E402

from services.common.db import transaction  # noqa: E402
from services.portal.store.models import Account, AuditEntry, Practice  # noqa: E402
from tests.unit.portal.factories import PracticeFixture, applicant, make_practice  # noqa: E402
from tests.unit.portal.test_api import bearer  # noqa: E402

_keys = itertools.count()


def idem() -> dict[str, str]:
    return {"Idempotency-Key": f"web-key-{next(_keys):08d}"}


@pytest.fixture
def practice(harness: Harness) -> PracticeFixture:
    return make_practice(harness.portal.db)


def open_account(harness: Harness, practice: PracticeFixture, limit: int = 3_000_00) -> tuple[str, str]:
    created = harness.client.post(
        "/api/v1/applications",
        json=applicant(practice.locations[0], requested_cents=limit),
        headers=bearer(harness, practice),
    ).get_json()
    account_id = created["detail"]["account_id"]
    with transaction(harness.portal.db) as session:
        session.execute(
            update(Account).where(Account.account_id == account_id).values(credit_limit_cents=limit)
        )
    return account_id, created["account_number"].replace(" ", "")


def charge_body(practice: PracticeFixture, amount: int, plan: str = "DI12", **extra: Any) -> dict[str, Any]:
    return {
        "location_id": practice.locations[0],
        "plan_code": plan,
        "amount_cents": amount,
        "description": "Crown, tooth 14",
        "treatment_date": "2027-01-15",
        **extra,
    }


def test_charge_through_the_api_is_idempotent(harness: Harness, practice: PracticeFixture) -> None:
    account_id, _ = open_account(harness, practice)
    headers = bearer(harness, practice, "front_desk")
    url = f"/api/v1/accounts/{account_id}/charges"
    key = idem()
    first = harness.client.post(url, json=charge_body(practice, 1_200_00), headers={**headers, **key})
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["balance_cents"] == 1_200_00 and body["available_credit_cents"] == 1_800_00
    assert "12 months" in body["disclosure"] and len(body["authorization_code"]) == 6
    again = harness.client.post(url, json=charge_body(practice, 1_200_00), headers={**headers, **key})
    assert again.status_code == 201 and again.get_json()["transaction_id"] == body["transaction_id"]
    other = harness.client.post(url, json=charge_body(practice, 1_300_00), headers={**headers, **key})
    assert other.status_code == 422 and other.get_json()["error"] == "idempotency_key_reused"
    missing = harness.client.post(url, json=charge_body(practice, 1_200_00), headers=headers)
    assert missing.status_code == 400 and "idempotency_key" in missing.get_json()["fields"]
    too_much = harness.client.post(url, json=charge_body(practice, 1_800_01), headers={**headers, **idem()})
    assert too_much.status_code == 400
    readonly = harness.client.post(
        url, json=charge_body(practice, 300_00), headers={**bearer(harness, practice, "read_only"), **idem()}
    )
    assert readonly.status_code == 403
    account = harness.client.get(f"/api/v1/accounts/{account_id}", headers=headers).get_json()
    assert account["summary"]["balance_cents"] == 1_200_00


def test_refund_void_hold_and_step_up_through_the_api(harness: Harness, practice: PracticeFixture) -> None:
    account_id, _ = open_account(harness, practice)
    with transaction(harness.portal.db) as session:
        session.execute(
            update(Practice)
            .where(Practice.practice_id == practice.practice_id)
            .values(refund_step_up_cents=100_00)
        )
    manager = bearer(harness, practice, "manager", auth_time=int(harness.clock()) - 3600)
    charged = harness.client.post(
        f"/api/v1/accounts/{account_id}/charges",
        json=charge_body(practice, 1_000_00),
        headers={**manager, **idem()},
    ).get_json()
    refunds = f"/api/v1/transactions/{charged['transaction_id']}/refunds"
    small = harness.client.post(refunds, json={"amount_cents": 50_00}, headers={**manager, **idem()})
    assert small.status_code == 201 and small.get_json()["balance_cents"] == 950_00
    big = harness.client.post(refunds, json={"amount_cents": 500_00}, headers={**manager, **idem()})
    assert big.status_code == 401
    assert big.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_user_authentication"')
    assert "max_age=300" in big.headers["WWW-Authenticate"]
    fresh = bearer(harness, practice, "manager", auth_time=int(harness.clock()) - 10)
    ok = harness.client.post(refunds, json={"amount_cents": 500_00}, headers={**fresh, **idem()})
    assert ok.status_code == 201 and ok.get_json()["refundable_cents"] == 450_00
    over = harness.client.post(refunds, json={"amount_cents": 450_01}, headers={**fresh, **idem()})
    assert over.status_code == 400
    front = bearer(harness, practice, "front_desk")
    assert (
        harness.client.post(refunds, json={"amount_cents": 1}, headers={**front, **idem()}).status_code == 403
    )
    # A hold, completed by the purchase; another charge voided.
    held = harness.client.post(
        f"/api/v1/accounts/{account_id}/holds",
        json=charge_body(practice, 400_00),
        headers={**front, **idem()},
    )
    assert held.status_code == 201 and held.get_json()["status"] == "open"
    hold_id = held.get_json()["hold_id"]
    done = harness.client.post(
        f"/api/v1/accounts/{account_id}/holds/{hold_id}/completion",
        json=charge_body(practice, 350_00),
        headers={**front, **idem()},
    )
    assert done.status_code == 201, done.get_json()
    assert done.get_json()["authorization_code"] == held.get_json()["authorization_code"]
    voided = harness.client.post(
        f"/api/v1/transactions/{done.get_json()['transaction_id']}/voids", headers={**front, **idem()}
    )
    assert voided.status_code == 201 and voided.get_json()["kind"] == "void"
    assert voided.get_json()["balance_cents"] == 450_00
    missing = harness.client.post(
        "/api/v1/transactions/txn_0000000000000000/voids", headers={**front, **idem()}
    )
    assert missing.status_code == 404


def test_transactions_csv_and_deposits_through_the_api(harness: Harness, practice: PracticeFixture) -> None:
    account_id, _ = open_account(harness, practice)
    admin = bearer(harness, practice, "admin")
    for amount in (300_00, 400_00):
        harness.client.post(
            f"/api/v1/accounts/{account_id}/charges",
            json=charge_body(practice, amount),
            headers={**admin, **idem()},
        )
    listed = harness.client.get("/api/v1/transactions?kind=charge&per_page=1", headers=admin).get_json()
    assert listed["total"] == 2 and len(listed["items"]) == 1
    assert harness.client.get("/api/v1/transactions?kind=nope", headers=admin).status_code == 400
    csv_answer = harness.client.get("/api/v1/transactions.csv?kind=charge", headers=admin)
    assert csv_answer.status_code == 200 and csv_answer.mimetype == "text/csv"
    lines = csv_answer.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("date,transaction_id,kind") and len(lines) == 3
    from datetime import date

    harness.portal.services.money.settle(date(2027, 1, 15))
    deposits = harness.client.get("/api/v1/deposits", headers=admin).get_json()
    assert deposits["total"] == 1 and deposits["items"][0]["charges_cents"] == 700_00
    assert (
        harness.client.get("/api/v1/deposits", headers=bearer(harness, practice, "front_desk")).status_code
        == 403
    )


def test_payments_need_a_service_token_with_the_scope(harness: Harness, practice: PracticeFixture) -> None:
    account_id, number = open_account(harness, practice)
    admin = bearer(harness, practice, "admin")
    harness.client.post(
        f"/api/v1/accounts/{account_id}/charges",
        json=charge_body(practice, 600_00),
        headers={**admin, **idem()},
    )
    body = {"account_number": number, "amount_cents": 100_00, "reference": "feed-1"}
    assert harness.client.post("/api/v1/payments", json=body, headers={**admin, **idem()}).status_code == 403
    harness.verifier.issue(
        "svc-token",
        sub="issuer-feed",
        client_id="issuer-feed",
        scope="payments:post",
        exp=int(harness.clock()) + 300,
    )
    service = {"Authorization": "Bearer svc-token"}
    key = idem()
    posted = harness.client.post("/api/v1/payments", json=body, headers={**service, **key})
    assert posted.status_code == 201 and posted.get_json()["balance_cents"] == 500_00
    again = harness.client.post("/api/v1/payments", json=body, headers={**service, **key})
    assert again.get_json()["transaction_id"] == posted.get_json()["transaction_id"]
    unknown = {**body, "account_number": "0" * 16}
    assert (
        harness.client.post("/api/v1/payments", json=unknown, headers={**service, **idem()}).status_code
        == 404
    )
    with harness.portal.db() as session:
        assert session.query(AuditEntry).filter(AuditEntry.action == "payment.post").count() >= 2


# --- the money pages ----------------------------------------------------------------------------

import re  # noqa: E402

from tests.unit.portal.conftest import CSRF  # noqa: E402

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def _form(harness: Harness, path: str) -> tuple[str, str, str]:
    page = harness.client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    html = page.get_data(as_text=True)
    return html, CSRF.search(html).group(1), KEY.search(html).group(1)  # type: ignore[union-attr]


def _transactions(harness: Harness, account_id: str) -> int:
    from sqlalchemy import func, select

    from services.portal.store.models import Transaction

    with harness.portal.db() as session:
        return int(session.scalar(select(func.count()).where(Transaction.account_id == account_id)) or 0)


def test_charge_and_refund_pages_with_step_up(harness: Harness, practice: PracticeFixture) -> None:
    account_id, _ = open_account(harness, practice)
    harness.sign_in(
        practice_id=practice.practice_id, roles=("manager",), auth_time=int(harness.clock()) - 3600
    )
    nav = harness.client.get("/").get_data(as_text=True)
    assert ">Transactions</a>" in nav and ">Deposits</a>" in nav
    account_page = harness.client.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert f'href="/accounts/{account_id}/charge"' in account_page
    html, csrf, key = _form(harness, f"/accounts/{account_id}/charge")
    assert "No interest if paid in full within 12 months" in html  # each offered plan's disclosure
    assert "<script" not in html and "style=" not in html
    data = {
        "csrf_token": csrf,
        "idempotency_key": key,
        "plan_code": "DI12",
        "location_id": practice.locations[0],
        "amount_cents": "1,000.00",
        "description": "Crown, tooth 14",
        "treatment_date": "2027-01-15",
    }
    bad = harness.client.post(f"/accounts/{account_id}/charge", data={**data, "amount_cents": "10.00"})
    assert bad.status_code == 400 and "minimum purchase" in bad.get_data(as_text=True)
    done = harness.client.post(f"/accounts/{account_id}/charge", data=data)
    assert done.status_code == 303 and "charged=" in done.headers["Location"]
    again = harness.client.post(f"/accounts/{account_id}/charge", data=data)  # a double submit
    assert again.status_code == 303 and again.headers["Location"] == done.headers["Location"]
    assert _transactions(harness, account_id) == 1
    shown = harness.client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Authorization code" in shown and "$1,000.00" in shown
    refund_path = re.search(r'href="(/transactions/txn_[0-9a-f]+/refund)"', shown).group(1)  # type: ignore[union-attr]
    # Over the practice's amount ($500 by default) with an hour-old sign-in: sign in again first.
    _html, csrf, key = _form(harness, refund_path)
    big = harness.client.post(
        refund_path, data={"csrf_token": csrf, "idempotency_key": key, "amount_cents": "600.00"}
    )
    assert big.status_code == 302
    back = f"{refund_path}?amount=600.00"  # the form opens again with what was typed
    assert _query(big.headers["Location"]) == {"next": back, "reauth": "1", "max_age": "300"}
    assert 'value="600.00"' in harness.client.get(back).get_data(as_text=True)
    small = harness.client.post(
        refund_path, data={"csrf_token": csrf, "idempotency_key": key, "amount_cents": "200.00"}
    )
    assert small.status_code == 303 and "refunded=1" in small.headers["Location"]
    after = harness.client.get(small.headers["Location"]).get_data(as_text=True)
    assert "$800.00" in after  # the balance after the refund
    no_csrf = harness.client.post(
        refund_path, data={"idempotency_key": "form-xyz-12345", "amount_cents": "1.00"}
    )
    assert no_csrf.status_code in (400, 403)


def test_transactions_list_csv_and_deposits_pages(harness: Harness, practice: PracticeFixture) -> None:
    account_id, _ = open_account(harness, practice)
    admin = bearer(harness, practice, "admin")
    for amount in (300_00, 400_00):
        harness.client.post(
            f"/api/v1/accounts/{account_id}/charges",
            json=charge_body(practice, amount),
            headers={**admin, **idem()},
        )
    from datetime import date

    harness.portal.services.money.settle(date(2027, 1, 15))
    harness.sign_in(practice_id=practice.practice_id, roles=("read_only",))
    listed = harness.client.get("/transactions?kind=charge")
    html = listed.get_data(as_text=True)
    assert listed.status_code == 200 and html.count("Crown, tooth 14") == 2
    assert 'href="/transactions.csv?kind=charge"' in html and ">Refund</a>" not in html
    assert (
        harness.client.get("/transactions?date_from=yesterday").status_code == 200
    )  # errors shown on the page
    csv_answer = harness.client.get("/transactions.csv?kind=charge")
    assert (
        csv_answer.mimetype == "text/csv" and len(csv_answer.get_data(as_text=True).strip().splitlines()) == 3
    )
    deposits = harness.client.get("/deposits").get_data(as_text=True)
    assert "$700.00" in deposits and "Jan 15, 2027" in deposits
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",), token="at-fd")
    assert harness.client.get("/deposits").status_code == 403
    assert ">Deposits</a>" not in harness.client.get("/").get_data(as_text=True)
