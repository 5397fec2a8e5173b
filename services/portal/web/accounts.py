"""Account pages: the practice's accounts, one account, the look-up at the desk."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from services.portal.web.actors import page_actor
from services.portal.web.context import portal
from services.portal.web.forms import query_or_errors, submitted

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.get("")
def index() -> str:
    page, errors = query_or_errors(
        lambda: portal().services.accounts.list(page_actor(), request.args, text=True)
    )
    return render_template("accounts/list.html", page=page, errors=errors, query=request.args.to_dict())


@bp.get("/lookup")
def lookup_form() -> str:
    return render_template("accounts/lookup.html", values={}, errors={}, matches=None)


@bp.post("/lookup")
def lookup() -> Response | str:
    result = submitted(
        lambda: portal().services.accounts.lookup(page_actor(), request.form, text=True),
        "accounts/lookup.html",
        matches=None,
    )
    if isinstance(result, Response):
        return result
    if len(result) == 1:
        return redirect(url_for("accounts.detail", account_id=result[0].account_id), 303)
    return render_template("accounts/lookup.html", values=request.form, errors={}, matches=result)


@bp.get("/<account_id>")
def detail(account_id: str) -> str:
    account = portal().services.accounts.get(page_actor(), account_id)
    return render_template("accounts/detail.html", account=account)
