"""Application pages: the list, a new application (decided at once), one application; prequalification."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from services.portal.permissions import Permission, require
from services.portal.service_layer.applications import CONSENT_TEXT
from services.portal.service_layer.inputs import US_STATES
from services.portal.web.actors import page_actor
from services.portal.web.context import portal
from services.portal.web.forms import query_or_errors, submitted

bp = Blueprint("applications", __name__)
STATE_OPTIONS = [(state, state) for state in US_STATES]


@bp.get("/applications")
def index() -> str:
    actor = page_actor()
    page, errors = query_or_errors(
        lambda: portal().services.applications.list(actor, request.args, text=True)
    )
    locations = portal().services.practice.locations(actor)
    return render_template(
        "applications/list.html", page=page, errors=errors, query=request.args.to_dict(), locations=locations
    )


def _form_context() -> dict[str, object]:
    locations = portal().services.practice.locations(page_actor())
    return {
        "location_options": [(location.location_id, location.name) for location in locations],
        "state_options": [(state, state) for state in US_STATES],
        "consent_text": CONSENT_TEXT,
    }


@bp.get("/applications/new")
def new() -> str:
    require(page_actor(), Permission.APPLY)
    return render_template("applications/new.html", values={}, errors={}, **_form_context())


@bp.post("/applications/new")
def submit() -> Response | str:
    result = submitted(
        lambda: portal().services.applications.submit(page_actor(), request.form, text=True),
        "applications/new.html",
        **_form_context(),
    )
    if isinstance(result, Response):
        return result
    # Rendered here rather than redirected: the full account number is shown this once.
    return render_template("applications/result.html", result=result, application=result.detail)


@bp.get("/applications/<application_id>")
def detail(application_id: str) -> str:
    application = portal().services.applications.get(page_actor(), application_id)
    return render_template("applications/detail.html", application=application)


@bp.get("/prequalify")
def prequalify_form() -> str:
    require(page_actor(), Permission.PREQUALIFICATION)
    return render_template("prequalify.html", values={}, errors={}, result=None, state_options=STATE_OPTIONS)


@bp.post("/prequalify")
def prequalify() -> Response | str:
    result = submitted(
        lambda: portal().services.prequalification.check(page_actor(), request.form, text=True),
        "prequalify.html",
        result=None,
        state_options=STATE_OPTIONS,
    )
    if isinstance(result, Response):
        return result
    # The form comes back empty: nothing the patient said is kept, not even in the page.
    return render_template(
        "prequalify.html", values={}, errors={}, result=result, state_options=STATE_OPTIONS
    )
