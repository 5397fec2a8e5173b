"""The JSON API under ``/api/v1``: the same service layer as the pages, behind bearer tokens.

Each request's ``Authorization: Bearer`` token is checked with auth over gRPC
(the portal's own verifier, the same one the pages use). No session cookie is
read or set and no redirect is ever sent: a missing or inactive token is 401
with ``WWW-Authenticate`` (RFC 6750 §3), a missing permission 403, another
practice's object 404, bad input 400 naming each field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from services.portal.permissions import Actor, require_staff
from services.portal.web.actors import actor_from
from services.portal.web.context import portal
from services.portal.web.jsonshape import to_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")

REALM = "provider-center"


@dataclass(frozen=True)
class Me:
    sub: str
    name: str
    practice_id: str
    roles: tuple[str, ...]
    permissions: tuple[str, ...]


def unauthorized(error: str | None, description: str) -> Response:
    """RFC 6750 §3: no token → no error code; a bad one → ``invalid_token``."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}", error_description="{description}"'
    response = jsonify(error=error or "unauthorized", message=description)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def _authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return unauthorized(None, "A bearer access token is required.")
    info = portal().verifier.verify(token)
    if not info.active:
        return unauthorized("invalid_token", "The access token is not active.")
    g.actor = actor_from(info, channel="api")
    return None


def _actor() -> Actor:
    return g.actor  # type: ignore[no-any-return]


def _ok(value: Any, status: int = 200) -> Response:
    response = jsonify(to_json(value))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _body() -> Any:
    """The JSON body, or a marker the service layer rejects as 'must be a JSON object'."""
    if not request.is_json:
        return None
    return request.get_json(silent=True)


@bp.get("/me")
def me() -> Response:
    actor = _actor()
    require_staff(actor)
    return _ok(
        Me(
            actor.sub,
            actor.name,
            actor.practice_id,
            actor.roles,
            tuple(sorted(p.value for p in actor.permissions)),
        )
    )


@bp.get("/locations")
def locations() -> Response:
    return _ok({"items": portal().services.practice.locations(_actor())})


@bp.post("/prequalifications")
def prequalify() -> Response:
    return _ok(portal().services.prequalification.check(_actor(), _body()))


@bp.get("/applications")
def applications() -> Response:
    return _ok(portal().services.applications.list(_actor(), request.args, text=True))


@bp.post("/applications")
def submit_application() -> Response:
    result = portal().services.applications.submit(_actor(), _body())
    return _ok(result, 201)


@bp.get("/applications/<application_id>")
def application(application_id: str) -> Response:
    return _ok(portal().services.applications.get(_actor(), application_id))


@bp.get("/accounts")
def accounts() -> Response:
    return _ok(portal().services.accounts.list(_actor(), request.args, text=True))


@bp.get("/accounts/<account_id>")
def account(account_id: str) -> Response:
    return _ok(portal().services.accounts.get(_actor(), account_id))


@bp.get("/accounts/<account_id>/transactions")
def account_transactions(account_id: str) -> Response:
    return _ok({"items": portal().services.accounts.transactions(_actor(), account_id)})


@bp.post("/account-lookups")
def lookup() -> Response:
    return _ok({"items": portal().services.accounts.lookup(_actor(), _body())})


@bp.get("/plans")
def plans() -> Response:
    return _ok({"items": portal().services.plans.catalogue(_actor())})


@bp.put("/plans/offered")
def offer_plans() -> Response:
    return _ok({"items": portal().services.plans.offer(_actor(), _body())})


@bp.post("/estimates")
def estimate() -> Response:
    return _ok(portal().services.plans.estimate(_actor(), _body()))


@bp.get("/audit-log")
def audit_log() -> Response:
    return _ok(portal().services.activity.list(_actor(), request.args, text=True))


# --- issue 7: money ---------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _key() -> str | None:
    return request.headers.get(IDEMPOTENCY_HEADER)


def _with(body: Any, **ids: str) -> Any:
    """The JSON body with the path's ids added (the path wins); anything else as it came."""
    return {**body, **ids} if isinstance(body, dict) else body


@bp.post("/accounts/<account_id>/charges")
def charge(account_id: str) -> Response:
    return _ok(portal().services.money.charge(_actor(), _with(_body(), account_id=account_id), _key()), 201)


@bp.post("/accounts/<account_id>/holds")
def hold(account_id: str) -> Response:
    result = portal().services.money.authorize(_actor(), _with(_body(), account_id=account_id), _key())
    return _ok(result, 201)


@bp.post("/accounts/<account_id>/holds/<hold_id>/completion")
def complete_hold(account_id: str, hold_id: str) -> Response:
    body = _with(_body(), account_id=account_id, hold_id=hold_id)
    return _ok(portal().services.money.charge(_actor(), body, _key()), 201)


@bp.post("/transactions/<transaction_id>/refunds")
def refund(transaction_id: str) -> Response:
    return _ok(portal().services.money.refund(_actor(), transaction_id, _body(), _key()), 201)


@bp.post("/transactions/<transaction_id>/voids")
def void(transaction_id: str) -> Response:
    return _ok(portal().services.money.void(_actor(), transaction_id, _key()), 201)


@bp.get("/transactions")
def transactions() -> Response:
    return _ok(portal().services.money.transactions(_actor(), request.args, text=True))


@bp.get("/transactions.csv")
def transactions_csv() -> Response:
    text = portal().services.money.export_csv(_actor(), request.args)
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="transactions.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/deposits")
def deposits() -> Response:
    return _ok(portal().services.money.deposits(_actor(), request.args, text=True))


@bp.post("/payments")
def post_payment() -> Response:
    """For the issuer's feed: a service client's token (client_credentials) with ``payments:post``."""
    return _ok(portal().services.money.post_payment(_actor(), _body(), _key()), 201)
