"""The audit log page for the practice's administrator (user_activity)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from services.portal.service_layer.inputs import AUDIT_ACTIONS, AUDIT_OUTCOMES
from services.portal.web.actors import page_actor
from services.portal.web.context import portal
from services.portal.web.forms import query_or_errors

bp = Blueprint("activity", __name__)


@bp.get("/activity")
def index() -> str:
    page, errors = query_or_errors(
        lambda: portal().services.activity.list(page_actor(), request.args, text=True)
    )
    return render_template(
        "activity.html",
        page=page,
        errors=errors,
        query=request.args.to_dict(),
        actions=AUDIT_ACTIONS,
        outcomes=AUDIT_OUTCOMES,
    )
