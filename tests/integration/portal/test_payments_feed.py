"""Issue 7's money with the REAL auth service (HTTP and gRPC on free ports, this test's
databases and Redis prefix), not the portal's unit-test fakes:

- the issuer's payment feed: a service client registered with ``providerctl auth client add``,
  its ``client_credentials`` token from auth's token endpoint (``client_secret_basic``),
  ``POST /api/v1/payments`` — and what is refused (no scope, a user's token, another audience);
- step-up (RFC 9470): a refund above the practice's amount with a sign-in older than
  ``max_age`` is 401 ``insufficient_user_authentication``; after a fresh sign-in at auth
  (the portal's own ``/login`` with ``prompt=login`` and ``max_age``) it goes through.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select

from services.portal import ledger
from services.portal.store.models import Account, AuditEntry, Promotion
from tests.integration.portal.test_api_with_auth import Staff, staff
from tests.integration.portal.test_sign_in_with_auth import CSRF, Wired, local, sign_in_at_auth
from tests.unit.portal.factories import applicant

pytestmark = pytest.mark.integration

FEED_SCOPE = "payments:post"
REFUND_STEP_UP_CENTS = 500_00  # a new practice's default (Practice.refund_step_up_cents)


def idem() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}


# --- auth: a registered service client and its token ----------------------------------------------


@dataclass
class ServiceClient:
    client_id: str
    secret: str


def register_service_client(
    wired: Wired,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client_id: str,
    *,
    scopes: list[str],
    audience: str,
) -> ServiceClient:
    """``providerctl auth client add … --grant-type client_credentials``, against this test's auth."""
    from services.auth import cli as auth_cli
    from services.cli import main

    monkeypatch.setattr(auth_cli, "_container", lambda env=None: wired.auth)
    capsys.readouterr()
    argv = ["auth", "client", "add", "--client-id", client_id, "--name", f"{client_id} (test)"]
    argv += ["--grant-type", "client_credentials", "--audience", audience]
    for scope in scopes:
        argv += ["--scope", scope]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"client {client_id} added" in out
    (line,) = [line for line in out.splitlines() if line.startswith("client secret (shown once): ")]
    return ServiceClient(client_id, line.split(": ", 1)[1].strip())


def client_token(wired: Wired, client: ServiceClient, scope: str | None = None) -> dict:
    """auth's real token endpoint over HTTP (found by discovery), the secret in HTTP Basic."""
    discovery = requests.get(f"{wired.auth_url}/.well-known/openid-configuration", timeout=5).json()
    assert "client_secret_basic" in discovery["token_endpoint_auth_methods_supported"]
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    response = requests.post(
        discovery["token_endpoint"], data=form, auth=(client.client_id, client.secret), timeout=5
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer" and "refresh_token" not in token
    return dict(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the portal: an account with promotional balances ---------------------------------------------


def open_account(who: Staff) -> tuple[str, str]:
    """An approved application through the API: the account's id and 16-digit number."""
    created = who.client.post("/api/v1/applications", json=applicant(who.locations[0]), headers=who.bearer)
    assert created.status_code == 201, created.get_data(as_text=True)
    result = created.get_json()
    return result["detail"]["account_id"], result["account_number"].replace(" ", "")


def charge(who: Staff, account_id: str, plan_code: str, amount_cents: int) -> dict:
    body = {
        "location_id": who.locations[0],
        "plan_code": plan_code,
        "amount_cents": amount_cents,
        "description": f"Treatment on {plan_code}",
        "treatment_date": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    answer = who.client.post(
        f"/api/v1/accounts/{account_id}/charges", json=body, headers={**who.bearer, **idem()}
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return dict(answer.get_json())


def promotions(wired: Wired, account_id: str) -> dict[str, tuple[int, str]]:
    """The account's promotions by their purchase: (balance, status)."""
    with wired.ctx.db() as session:
        return {
            p.transaction_id: (p.balance_cents, p.status)
            for p in session.scalars(select(Promotion).where(Promotion.account_id == account_id))
        }


def assert_ledger_holds(wired: Wired, account_id: str) -> int:
    """balance = charges − voids − refunds − payments + interest, from the rows themselves."""
    with wired.ctx.db() as session:
        account = session.get(Account, account_id)
        assert account is not None
        assert account.balance_cents == ledger.ledger_sum(session, account_id)
        return account.balance_cents


# --- 1. the issuer's payment feed ----------------------------------------------------------------


def test_the_issuers_feed_posts_payments_with_a_real_client_credentials_token(
    wired: Wired, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    front = staff(wired, "Juniper Dental", "admin")
    account_id, number = open_account(front)
    long = charge(front, account_id, "DI12", 1_000_00)  # its promotion ends in 12 months
    short = charge(front, account_id, "DI6", 500_00)  # … in 6: the plan terms pay this one first
    standard = charge(front, account_id, "STD", 200_00)  # no promotion
    assert standard["balance_cents"] == 1_700_00
    assert set(promotions(wired, account_id)) == {long["transaction_id"], short["transaction_id"]}

    feed = register_service_client(
        wired, monkeypatch, capsys, "issuer-feed", scopes=[FEED_SCOPE], audience="portal"
    )
    issued = client_token(wired, feed, FEED_SCOPE)
    assert issued["scope"] == FEED_SCOPE
    service = bearer(issued["access_token"])
    info = wired.ctx.verifier.verify(issued["access_token"])  # over gRPC, for the portal's audience
    assert info.active and info.sub == "issuer-feed" and not info.practice_id and not info.roles

    # 600.00: the DI6 promotion (ends first) is paid off, the rest goes to DI12; STD untouched.
    body = {"account_number": number, "amount_cents": 600_00, "reference": "feed-20261126-0001"}
    key = idem()
    posted = front.client.post("/api/v1/payments", json=body, headers={**service, **key})
    assert posted.status_code == 201, posted.get_data(as_text=True)
    payment = posted.get_json()
    assert payment["kind"] == "payment" and payment["amount_cents"] == 600_00
    assert payment["account_id"] == account_id
    assert payment["balance_cents"] == 1_100_00
    limit = front.client.get(f"/api/v1/accounts/{account_id}", headers=front.bearer).get_json()["summary"][
        "credit_limit_cents"
    ]
    assert payment["available_credit_cents"] == limit - 1_100_00
    assert posted.headers["Cache-Control"] == "no-store"
    assert promotions(wired, account_id) == {
        short["transaction_id"]: (0, "paid"),
        long["transaction_id"]: (900_00, "open"),
    }
    assert assert_ledger_holds(wired, account_id) == 1_100_00

    # The same Idempotency-Key again: the same payment back, nothing posted twice.
    again = front.client.post("/api/v1/payments", json=body, headers={**service, **key})
    assert again.status_code == 201, again.get_data(as_text=True)
    assert again.get_json()["transaction_id"] == payment["transaction_id"]
    assert again.get_json()["amount_cents"] == 600_00
    # … and with a different request it is refused, nothing done.
    changed = front.client.post(
        "/api/v1/payments", json={**body, "amount_cents": 1_00}, headers={**service, **key}
    )
    assert changed.status_code == 422 and changed.get_json()["error"] == "idempotency_key_reused"
    assert assert_ledger_holds(wired, account_id) == 1_100_00

    # The practice sees it in the account's payment history (API and page), once.
    detail = front.client.get(f"/api/v1/accounts/{account_id}", headers=front.bearer).get_json()
    assert detail["summary"]["balance_cents"] == 1_100_00
    assert [(p["transaction_id"], p["amount_cents"]) for p in detail["payments"]] == [
        (payment["transaction_id"], 600_00)
    ]
    assert detail["payments"][0]["description"] == "Payment feed-20261126-0001"
    assert {(p["plan_code"], p["balance_cents"]) for p in detail["promotions"]} == {
        ("DI6", 0),
        ("DI12", 900_00),
    }
    page = front.client.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert "Payment feed-20261126-0001" in page

    # A second payment pays DI12 off, and only then lowers the standard balance.
    second = front.client.post(
        "/api/v1/payments",
        json={"account_number": number, "amount_cents": 1_000_00, "reference": "feed-20261126-0002"},
        headers={**service, **idem()},
    )
    assert second.status_code == 201, second.get_data(as_text=True)
    assert second.get_json()["balance_cents"] == 100_00
    assert promotions(wired, account_id) == {
        short["transaction_id"]: (0, "paid"),
        long["transaction_id"]: (0, "paid"),
    }
    # More than the balance: 400, nothing posted.
    over = front.client.post(
        "/api/v1/payments",
        json={"account_number": number, "amount_cents": 100_01},
        headers={**service, **idem()},
    )
    assert over.status_code == 400 and "amount_cents" in over.get_json()["fields"]
    assert assert_ledger_holds(wired, account_id) == 100_00

    # Audited under the service client's identity.
    with wired.ctx.db() as session:
        rows = session.execute(
            select(AuditEntry.actor_sub, AuditEntry.outcome).where(AuditEntry.action == "payment.post")
        ).all()
    assert ("issuer-feed", "ok") in rows and ("issuer-feed", "refused") in rows


def test_what_the_payment_feed_refuses(
    wired: Wired, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = staff(wired, "Larch Dental", "admin")
    account_id, number = open_account(admin)
    charge(admin, account_id, "STD", 300_00)
    body = {"account_number": number, "amount_cents": 50_00, "reference": "feed-refused"}

    def refused(headers: dict[str, str], status: int) -> dict:
        answer = admin.client.post("/api/v1/payments", json=body, headers={**headers, **idem()})
        assert answer.status_code == status, answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Location" not in answer.headers  # the API never redirects
        if status == 403:  # RFC 6750 §3.1
            assert answer.headers["WWW-Authenticate"] == (
                'Bearer error="insufficient_scope", error_description="The access token does not '
                f'carry the {FEED_SCOPE} scope.", scope="{FEED_SCOPE}"'
            )
        else:
            assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        return dict(answer.get_json())

    # A service client for the portal without the scope: 403, naming the scope it lacks.
    reports = register_service_client(
        wired, monkeypatch, capsys, "reports-bot", scopes=["reports:read"], audience="portal"
    )
    no_scope = client_token(wired, reports)
    assert no_scope["scope"] == "reports:read"
    answer = refused(bearer(no_scope["access_token"]), 403)
    assert answer == {
        "error": "forbidden",
        "message": "The access token does not carry the payments:post scope.",
        "permission": FEED_SCOPE,
    }

    # A user's token (an account administrator's, from the portal's sign-in): 403 too.
    answer = refused(admin.bearer, 403)
    assert answer["permission"] == FEED_SCOPE
    assert answer["message"] == "The access token does not carry the payments:post scope."

    # A token with the scope but for another API (audience): not active for the portal, 401.
    elsewhere = register_service_client(
        wired,
        monkeypatch,
        capsys,
        "ledger-feed",
        scopes=[FEED_SCOPE],
        audience="https://ledger.providercenter.example",
    )
    other_audience = client_token(wired, elsewhere, FEED_SCOPE)
    assert other_audience["scope"] == FEED_SCOPE
    answer = refused(bearer(other_audience["access_token"]), 401)
    assert answer["error"] == "invalid_token"
    assert not wired.ctx.verifier.verify(other_audience["access_token"]).active

    # And a service token is no user: it reads no practice's data.
    feed = register_service_client(
        wired, monkeypatch, capsys, "issuer-feed-2", scopes=[FEED_SCOPE], audience="portal"
    )
    service = bearer(client_token(wired, feed)["access_token"])
    assert admin.client.get(f"/api/v1/accounts/{account_id}", headers=service).status_code == 403
    assert admin.client.get("/api/v1/transactions", headers=service).status_code == 403

    assert assert_ledger_holds(wired, account_id) == 300_00
    detail = admin.client.get(f"/api/v1/accounts/{account_id}", headers=admin.bearer).get_json()
    assert detail["payments"] == []


# --- 2. step-up for large refunds (RFC 9470) ------------------------------------------------------


def sign_in(wired: Wired, user: object, browser: requests.Session) -> tuple[FlaskClient, Callable[[], str]]:
    """A portal browser signed in through auth; returns it and a reader of its current access token."""
    client = wired.portal_app.test_client()
    to_login = client.get("/")
    to_auth = client.get(to_login.headers["Location"])
    callback = sign_in_at_auth(browser, to_auth.headers["Location"], user)
    assert client.get(local(callback)).status_code == 302

    def access_token() -> str:
        with client.session_transaction() as session:
            ref = session["signed_in"]["ref"]
        tokens = wired.ctx.token_store.load(ref, 600)
        assert tokens is not None
        return tokens.access_token

    return client, access_token


def test_a_large_refund_needs_a_fresh_sign_in_at_auth(wired: Wired) -> None:
    from tests.support.auth_factory import make_user

    front = staff(wired, "Maple Dental", "front_desk")
    account_id, _number = open_account(front)
    purchase = charge(front, account_id, "DI12", 2_000_00)
    refunds = f"/api/v1/transactions/{purchase['transaction_id']}/refunds"

    manager = make_user(wired.auth, front.practice_id, roles=["manager"])  # type: ignore[arg-type]
    browser = requests.Session()
    client, access_token = sign_in(wired, manager, browser)
    signed_in = wired.ctx.verifier.verify(access_token())
    assert signed_in.active and signed_in.auth_time > 0
    old_auth_time = signed_in.auth_time

    # The portal's clock moves to one second past max_age after that sign-in (auth keeps real
    # time, so its tokens stay valid: only their auth_time is now too old for a large refund).
    wired.clock.now = old_auth_time + 301
    old = bearer(access_token())

    # At or below the practice's amount: never asks, however old the sign-in.
    for amount in (100_00, REFUND_STEP_UP_CENTS):
        small = client.post(refunds, json={"amount_cents": amount}, headers={**old, **idem()})
        assert small.status_code == 201, small.get_data(as_text=True)
    assert small.get_json()["refundable_cents"] == 1_400_00

    # Above it: RFC 9470's challenge, nothing refunded.
    key = idem()
    large = client.post(refunds, json={"amount_cents": 600_00}, headers={**old, **key})
    assert large.status_code == 401, large.get_data(as_text=True)
    challenge = large.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    assert "max_age=300" in challenge
    assert large.get_json()["error"] == "insufficient_user_authentication"
    assert large.get_json()["max_age"] == 300
    assert large.headers["Cache-Control"] == "no-store"
    assert assert_ledger_holds(wired, account_id) == 2_000_00 - 100_00 - REFUND_STEP_UP_CENTS

    # The page does the same by sending the browser to the portal's sign-in with reauth and max_age.
    form = client.get(f"/transactions/{purchase['transaction_id']}/refund")
    assert form.status_code == 200, form.get_data(as_text=True)[:300]
    csrf = CSRF.search(form.get_data(as_text=True))
    assert csrf is not None
    page = client.post(
        f"/transactions/{purchase['transaction_id']}/refund",
        data={
            "csrf_token": csrf.group(1),
            "idempotency_key": key["Idempotency-Key"],
            "amount_cents": "600.00",
        },
    )
    assert page.status_code == 302, page.get_data(as_text=True)[:300]
    login = page.headers["Location"]
    query = parse_qs(urlsplit(login).query)
    assert urlsplit(login).path == "/login"
    assert query["reauth"] == ["1"] and query["max_age"] == ["300"]
    # The form opens again afterwards with the amount the user typed.
    assert query["next"] == [f"/transactions/{purchase['transaction_id']}/refund?amount=600.00"]

    # The portal's sign-in sends the browser to auth, which must ask again (prompt=login, max_age).
    to_auth = client.get(local(login) if login.startswith("http") else login)
    assert to_auth.status_code == 302
    authorize = to_auth.headers["Location"]
    assert authorize.startswith(f"{wired.auth_url}/authorize?")
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["prompt"] == ["login"] and asked["max_age"] == ["300"]
    first = browser.get(authorize, allow_redirects=False, timeout=5)
    assert first.status_code == 302 and not first.headers["Location"].startswith(
        wired.auth_url + "/authorize"
    )
    # auth_time is in whole seconds: make the fresh one at least two seconds after the old one.
    while time.time() < old_auth_time + 2:
        time.sleep(0.1)
    callback = sign_in_at_auth(browser, authorize, manager, code_step=1)
    back = client.get(local(callback))
    assert back.status_code == 302
    assert back.headers["Location"] == f"/transactions/{purchase['transaction_id']}/refund?amount=600.00"

    fresh_token = access_token()
    fresh = wired.ctx.verifier.verify(fresh_token)
    assert fresh.active and fresh.auth_time >= old_auth_time + 2
    assert wired.clock() - fresh.auth_time <= 300
    # The same refund, the same Idempotency-Key (the refusal claimed nothing): it goes through.
    done = client.post(refunds, json={"amount_cents": 600_00}, headers={**bearer(fresh_token), **key})
    assert done.status_code == 201, done.get_data(as_text=True)
    assert done.get_json()["kind"] == "refund" and done.get_json()["refundable_cents"] == 800_00
    assert assert_ledger_holds(wired, account_id) == 2_000_00 - 100_00 - REFUND_STEP_UP_CENTS - 600_00
    # The older token still cannot: step-up is about the token, not the user.
    stale = client.post(refunds, json={"amount_cents": 700_00}, headers={**old, **idem()})
    assert stale.status_code == 401 and stale.get_json()["error"] == "insufficient_user_authentication"

    with wired.ctx.db() as session:
        outcomes = session.scalars(
            select(AuditEntry.outcome).where(
                AuditEntry.action == "refund.create", AuditEntry.actor_sub == manager.user_pk
            )
        ).all()
    assert sorted(outcomes) == ["ok", "ok", "ok", "step_up", "step_up", "step_up"]  # API, page, stale
