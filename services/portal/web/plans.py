"""Plan pages: the catalogue and what the practice offers (manage_promotions changes it), the estimator."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from services.common.web import check_csrf
from services.portal.errors import ValidationError
from services.portal.permissions import Permission
from services.portal.web.actors import page_actor
from services.portal.web.context import portal

bp = Blueprint("plans", __name__, url_prefix="/plans")


def _page(status: int = 200, errors: dict[str, str] | None = None, estimate=None, saved=False) -> Response:  # type: ignore[no-untyped-def]
    actor = page_actor()
    catalogue = portal().services.plans.catalogue(actor)
    body = render_template(
        "plans.html",
        plans=catalogue,
        offered=[plan for plan in catalogue if plan.offered],
        can_manage=actor.can(Permission.MANAGE_PROMOTIONS),
        query=request.args.to_dict(),
        errors=errors or {},
        estimate=estimate,
        saved=saved,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("")
def index() -> Response:
    estimate = None
    errors: dict[str, str] = {}
    if request.args.get("plan_code") or request.args.get("amount_cents"):
        try:
            estimate = portal().services.plans.estimate(page_actor(), request.args, text=True)
        except ValidationError as exc:
            errors = exc.fields
    return _page(400 if errors else 200, errors, estimate, saved=request.args.get("saved") == "1")


@bp.post("/offered")
def offer() -> Response:
    check_csrf()
    try:
        portal().services.plans.offer(page_actor(), request.form, text=True)
    except ValidationError as exc:
        return _page(400, exc.fields)
    return redirect(url_for("plans.index", saved="1"), 303)
