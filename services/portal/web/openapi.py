"""The API's OpenAPI 3.1 document, served at ``/api/openapi.json``.

Built from the same declarations the code runs on: request bodies and query
parameters from :mod:`services.portal.service_layer.inputs`, response bodies
from the read models' dataclass fields (:mod:`jsonshape`). Only the list of
operations and their prose is written here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from services.portal.estimator import Estimate
from services.portal.service_layer import inputs
from services.portal.service_layer.accounts import AccountDetail, AccountSummary, TransactionView
from services.portal.service_layer.activity import ActivityEntry
from services.portal.service_layer.applications import ApplicationDetail, ApplicationSummary, SubmissionResult
from services.portal.service_layer.money import DepositView, HoldView, LedgerRow, MoneyResult
from services.portal.service_layer.plan_offers import PlanView
from services.portal.service_layer.practice import LocationView
from services.portal.service_layer.prequalification import PrequalificationResult
from services.portal.validation import Field, object_schema
from services.portal.web.api import Me
from services.portal.web.jsonshape import nested_models, page_schema, schema_for

bp = Blueprint("apidoc", __name__)

READ_MODELS = (
    Me,
    LocationView,
    PrequalificationResult,
    ApplicationSummary,
    ApplicationDetail,
    SubmissionResult,
    AccountSummary,
    AccountDetail,
    TransactionView,
    PlanView,
    Estimate,
    ActivityEntry,
    MoneyResult,
    HoldView,
    LedgerRow,
    DepositView,
)
ERRORS = {
    "400": ("BadRequest", "The input breaks a rule; `fields` names each bad field."),
    "401": ("Unauthorized", "No bearer token, or one auth does not vouch for (see `WWW-Authenticate`)."),
    "403": ("Forbidden", "The token's roles do not include the permission this operation needs."),
    "404": ("NotFound", "No such object for this practice (another practice's object looks the same)."),
    "409": ("Conflict", "A request with the same `Idempotency-Key` is still being processed; retry shortly."),
    "415": ("UnsupportedMediaType", "The body must be `application/json`."),
    "422": (
        "KeyReused",
        "The `Idempotency-Key` was already used with a different request; nothing was done.",
    ),
    "429": ("TooManyRequests", "Too many attempts in a short time; see `Retry-After`."),
    "503": ("Unavailable", "Auth's token check or the database is out of reach; try again later."),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _items(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref(name)}},
    }


def _query(fields: tuple[Field, ...]) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "in": "query", "required": False, "schema": f.json_schema()}
        | ({"description": f.description} if f.description else {})
        for f in fields
    ]


def _path(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"the {what}'s id, as the API returned it",
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    }


def _idempotency_key() -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": (
            "one key per intended action: the same key and body give back the first result (never a "
            "second transaction); the same key with another body is 422; while the first is in progress, 409"
        ),
        "schema": inputs.IDEMPOTENCY_KEY.json_schema(),
    }


def _money(
    operation_id: str,
    summary: str,
    permission: str,
    response: dict[str, Any],
    parameters: list[dict[str, Any]],
    body: tuple[Field, ...] | None,
) -> dict[str, Any]:
    """A money action: 201, an ``Idempotency-Key`` header, and the idempotency answers."""
    operation = _operation(
        operation_id,
        summary,
        permission,
        response,
        status="201",
        parameters=[*parameters, _idempotency_key()],
        body=body,
        errors=("400", "401", "403", "404", "409", "422", "503"),
    )
    return operation


def _without(fields: tuple[Field, ...], *names: str) -> tuple[Field, ...]:
    return tuple(f for f in fields if f.name not in names)


def _operation(
    operation_id: str,
    summary: str,
    permission: str,
    response: dict[str, Any],
    *,
    status: str = "200",
    parameters: list[dict[str, Any]] | None = None,
    body: tuple[Field, ...] | None = None,
    errors: tuple[str, ...] = ("401", "403", "503"),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Permission: `{permission}`.",
        "responses": {
            status: {"description": "OK", "content": {"application/json": {"schema": response}}},
        },
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": object_schema(body)}},
        }
        errors = (*errors, "400", "415")
    for code in sorted(set(errors)):
        operation["responses"][code] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    return operation


def document() -> dict[str, Any]:
    account_id = _path("account_id", "account")
    application_id = _path("application_id", "application")
    paths = {
        "/me": {
            "get": _operation("getMe", "Who the token speaks for, and what it may do", "any role", _ref("Me"))
        },
        "/locations": {
            "get": _operation("listLocations", "The practice's locations", "any role", _items("LocationView"))
        },
        "/prequalifications": {
            "post": _operation(
                "prequalify",
                "Soft check: is the patient likely to be approved? Stores nothing.",
                "prequalification",
                _ref("PrequalificationResult"),
                body=inputs.PREQUALIFICATION,
            )
        },
        "/applications": {
            "get": _operation(
                "listApplications",
                "The practice's credit applications, newest first",
                "account_lookup",
                page_schema(ApplicationSummary),
                parameters=_query(inputs.APPLICATION_LIST),
                errors=("400", "401", "403", "503"),
            ),
            "post": _operation(
                "submitApplication",
                "Apply on the patient's behalf (with their consent); decided at once",
                "apply",
                _ref("SubmissionResult"),
                status="201",
                body=inputs.APPLICATION,
            ),
        },
        "/applications/{application_id}": {
            "get": _operation(
                "getApplication",
                "One application, with the decision and its reasons",
                "account_lookup",
                _ref("ApplicationDetail"),
                parameters=[application_id],
                errors=("401", "403", "404", "503"),
            )
        },
        "/accounts": {
            "get": _operation(
                "listAccounts",
                "Accounts the practice applied for, transacted with or looked up",
                "account_lookup",
                page_schema(AccountSummary),
                parameters=_query(inputs.ACCOUNT_LIST),
                errors=("400", "401", "403", "503"),
            )
        },
        "/accounts/{account_id}": {
            "get": _operation(
                "getAccount",
                "One account: status, limit, balance, available credit, promotions, payments",
                "account_lookup",
                _ref("AccountDetail"),
                parameters=[account_id],
                errors=("401", "403", "404", "503"),
            )
        },
        "/accounts/{account_id}/transactions": {
            "get": _operation(
                "listAccountTransactions",
                "The account's transactions (another practice's without details)",
                "account_lookup",
                _items("TransactionView"),
                parameters=[account_id],
                errors=("401", "403", "404", "503"),
            )
        },
        "/account-lookups": {
            "post": _operation(
                "lookUpAccount",
                "Find the patient's account by number + ZIP, or name + date of birth + ZIP; links it",
                "account_lookup",
                _items("AccountSummary"),
                body=inputs.LOOKUP,
                errors=("401", "403", "429", "503"),
            )
        },
        "/plans": {
            "get": _operation(
                "listPlans",
                "The plan catalogue, with what this practice offers",
                "any role",
                _items("PlanView"),
            )
        },
        "/plans/offered": {
            "put": _operation(
                "setOfferedPlans",
                "Choose the plans the practice offers",
                "manage_promotions",
                _items("PlanView"),
                body=inputs.OFFERED_PLANS,
            )
        },
        "/estimates": {
            "post": _operation(
                "estimatePayment",
                "Monthly payment for a purchase on an offered plan",
                "any role",
                _ref("Estimate"),
                body=inputs.ESTIMATE,
                errors=("401", "403", "404", "503"),
            )
        },
        "/audit-log": {
            "get": _operation(
                "listAuditLog",
                "The practice's audit log, newest first",
                "user_activity",
                page_schema(ActivityEntry),
                parameters=_query(inputs.ACTIVITY_LIST),
                errors=("400", "401", "403", "503"),
            )
        },
        "/accounts/{account_id}/charges": {
            "post": _money(
                "createCharge",
                "Charge a treatment to the account on an offered plan (the disclosure is stored with it)",
                "purchase",
                _ref("MoneyResult"),
                [account_id],
                _without(inputs.CHARGE, "account_id"),
            )
        },
        "/accounts/{account_id}/holds": {
            "post": _money(
                "createHold",
                "Authorization only: reserve credit for a later purchase (expires unused)",
                "authorization_only",
                _ref("HoldView"),
                [account_id],
                _without(inputs.AUTHORIZATION, "account_id"),
            )
        },
        "/accounts/{account_id}/holds/{hold_id}/completion": {
            "post": _money(
                "completeHold",
                "Complete a hold with the purchase (at most the held amount)",
                "purchase",
                _ref("MoneyResult"),
                [account_id, _path("hold_id", "hold")],
                _without(inputs.CHARGE, "account_id", "hold_id"),
            )
        },
        "/transactions/{transaction_id}/refunds": {
            "post": _money(
                "createRefund",
                "Refund part or all of a charge (never more than is left); over the practice's amount "
                "a recent sign-in is required (RFC 9470 challenge in `WWW-Authenticate`)",
                "refund",
                _ref("MoneyResult"),
                [_path("transaction_id", "charge")],
                inputs.REFUND,
            )
        },
        "/transactions/{transaction_id}/voids": {
            "post": _money(
                "voidCharge",
                "Void a charge before it is settled",
                "purchase",
                _ref("MoneyResult"),
                [_path("transaction_id", "charge")],
                None,
            )
        },
        "/transactions": {
            "get": _operation(
                "listTransactions",
                "The practice's charges, refunds and voids, newest first, with search and filters",
                "account_lookup",
                page_schema(LedgerRow),
                parameters=_query(inputs.TRANSACTION_LIST),
                errors=("400", "401", "403", "503"),
            )
        },
        "/transactions.csv": {
            "get": {
                **_operation(
                    "exportTransactions",
                    "The filtered transactions as CSV (amounts in cents and dollars)",
                    "account_lookup",
                    {"type": "string"},
                    parameters=_query(_without(inputs.TRANSACTION_LIST, "page", "per_page")),
                    errors=("400", "401", "403", "503"),
                ),
            }
        },
        "/deposits": {
            "get": _operation(
                "listDeposits",
                "The daily funding report: deposits by business date (charges − refunds − fees)",
                "daily_funding_report",
                page_schema(DepositView),
                parameters=_query(inputs.DEPOSIT_LIST),
                errors=("400", "401", "403", "503"),
            )
        },
        "/payments": {
            "post": _money(
                "postPayment",
                "The issuer's payment feed: post a cardholder's payment (a service client's token with "
                "scope `payments:post`, client_credentials grant)",
                "scope payments:post",
                _ref("MoneyResult"),
                [],
                inputs.PAYMENT,
            )
        },
    }
    paths["/transactions.csv"]["get"]["responses"]["200"]["content"] = {
        "text/csv": {"schema": {"type": "string"}}
    }
    models: dict[str, type] = {}
    for model in READ_MODELS:
        nested_models(model, models)
    schemas: dict[str, Any] = {name: schema_for(cls) for name, cls in sorted(models.items())}
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "permission": {"type": "string"},
        },
    }
    responses = {
        name: {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
        for name, text in ERRORS.values()
    }
    responses["Unauthorized"]["headers"] = {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": "RFC 6750 bearer challenge"}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Provider Center portal API",
            "version": "1.0.0",
            "description": (
                "What the portal's pages do, as JSON. Authenticate with an access token from auth "
                "(audience `portal`) as `Authorization: Bearer …`; the practice and roles come from the "
                "token. Money is integer cents; rates are decimal strings (percent)."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas,
            "responses": responses,
        },
    }


@bp.get("/api/openapi.json")
def openapi() -> Response:
    return jsonify(document())
