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
    # Without max_age a signed-in browser is simply sent on.
    plain = harness.client.get("/login?next=/accounts")
    assert plain.headers["Location"].endswith("/accounts")
