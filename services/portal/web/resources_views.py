"""The resource catalogue: browse, search, download (any staff role)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, render_template, request

from services.portal import resources
from services.portal.permissions import require_staff
from services.portal.store import practices
from services.portal.web.actors import page_actor
from services.portal.web.context import portal

bp = Blueprint("resources", __name__, url_prefix="/resources")


@bp.get("")
def index() -> str:
    require_staff(page_actor())
    q = request.args.get("q", "").strip()[:100]
    category = request.args.get("category", "")
    category = category if category in resources.CATEGORIES else ""
    return render_template(
        "resources/index.html",
        items=resources.search(q, category),
        q=q,
        category=category,
        categories=resources.CATEGORIES,
        kinds=resources.KINDS,
    )


@bp.get("/<slug>/download")
def download(slug: str) -> Response:
    actor = page_actor()
    require_staff(actor)
    resource = resources.get(slug)
    if resource is None:
        abort(404)
    practice_name = g.user.practice_name
    if not practice_name:
        profile = practices.get(portal().db, actor.practice_id)
        practice_name = profile.name if profile else ""
    response = Response(resources.download(resource, practice_name), mimetype=resource.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{resource.filename}"'
    return response
