"""Money pages (issue 7): charge an account, refund a charge, the transactions list with its CSV,
the deposits (daily funding report). Server-rendered forms; every rule is the service layer's.

Each charge and refund form carries its own ``idempotency_key`` (made when the form is shown),
so a double click or a resubmitted form gives back the first result, never a second one.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, redirect, render_template, request, url_for

from services.portal.permissions import Permission
from services.portal.web.actors import page_actor
from services.portal.web.context import portal
from services.portal.web.forms import query_or_errors, submitted

bp = Blueprint("money", __name__)


def _new_key() -> str:
    return "form-" + secrets.token_urlsafe(18)


def _charge_context(account_id: str) -> dict[str, object]:
    actor = page_actor()
    services = portal().services
    account = services.accounts.get(actor, account_id)
    plans = [plan for plan in services.plans.catalogue(actor) if plan.offered]
    return {
        "account": account,
        "plans": plans,
        "locations": services.practice.locations(actor),
        "today": services.money.deps.today().isoformat(),
    }


@bp.get("/accounts/<account_id>/charge")
def charge_form(account_id: str) -> str:
    context = _charge_context(account_id)
    values = {"treatment_date": context["today"], "idempotency_key": _new_key()}
    return render_template("money/charge.html", values=values, errors={}, **context)


@bp.post("/accounts/<account_id>/charge")
def charge(account_id: str) -> Response:
    context = _charge_context(account_id)
    form = {**request.form.to_dict(), "account_id": account_id}
    result = submitted(
        lambda: portal().services.money.charge(
            page_actor(), form, request.form.get("idempotency_key"), text=True
        ),
        "money/charge.html",
        **context,
    )
    if isinstance(result, Response):
        return result
    return redirect(url_for("accounts.detail", account_id=account_id, charged=result.authorization_code), 303)


def _refund_context(transaction_id: str) -> dict[str, object]:
    return {
        "transaction_id": transaction_id,
        "threshold_cents": portal().services.money.refund_threshold(page_actor()),
    }


@bp.get("/transactions/<transaction_id>/refund")
def refund_form(transaction_id: str) -> str:
    values = {"idempotency_key": _new_key(), "amount_cents": request.args.get("amount", "")}
    return render_template("money/refund.html", values=values, errors={}, **_refund_context(transaction_id))


@bp.post("/transactions/<transaction_id>/refund")
def refund(transaction_id: str) -> Response:
    result = submitted(
        lambda: portal().services.money.refund(
            page_actor(), transaction_id, request.form, request.form.get("idempotency_key"), text=True
        ),
        "money/refund.html",
        **_refund_context(transaction_id),
    )
    if isinstance(result, Response):
        return result
    return redirect(url_for("accounts.detail", account_id=result.account_id, refunded="1"), 303)


@bp.get("/transactions")
def transactions() -> str:
    actor = page_actor()
    page, errors = query_or_errors(
        lambda: portal().services.money.transactions(actor, request.args, text=True)
    )
    query = {k: v for k, v in request.args.to_dict().items() if v}
    return render_template(
        "money/transactions.html",
        page=page,
        errors=errors,
        query=query,
        export_query={k: v for k, v in query.items() if k not in {"page", "per_page"}},
        locations=portal().services.practice.locations(actor),
        can_refund=actor.can(Permission.REFUND),
    )


@bp.get("/transactions.csv")
def transactions_csv() -> Response:
    text = portal().services.money.export_csv(page_actor(), request.args)
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="transactions.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/deposits")
def deposits() -> str:
    page, errors = query_or_errors(
        lambda: portal().services.money.deposits(page_actor(), request.args, text=True)
    )
    query = {k: v for k, v in request.args.to_dict().items() if v}
    return render_template("money/deposits.html", page=page, errors=errors, query=query)
