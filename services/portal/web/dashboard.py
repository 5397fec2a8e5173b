"""The dashboard: the first page a signed-in user sees."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, g, render_template

from services.common.token_client import TokenInfo
from services.portal.permissions import ROLE_LABELS
from services.portal.store import practices
from services.portal.web.actors import page_actor
from services.portal.web.context import portal

bp = Blueprint("dashboard", __name__)


@dataclass(frozen=True)
class Greeting:
    """What the dashboard shows about who is signed in, shaped for the template."""

    name: str
    practice_name: str
    practice_id: str
    roles: tuple[str, ...]


def greeting(user: TokenInfo, remembered_name: str) -> Greeting:
    """Names from auth's answer first; the portal's profile and the ID token fill gaps."""
    practice_name = user.practice_name
    if not practice_name and user.practice_id:
        profile = practices.get(portal().db, user.practice_id)
        practice_name = profile.name if profile else ""
    return Greeting(
        name=user.name or remembered_name or "there",
        practice_name=practice_name or user.practice_id,
        practice_id=user.practice_id,
        roles=tuple(ROLE_LABELS.get(role, role) for role in user.roles),
    )


@bp.get("/")
def index() -> str:
    actor = page_actor()
    summary = portal().services.practice.summary(actor) if actor.is_staff else None
    return render_template(
        "dashboard.html",
        greeting=greeting(g.user, g.signed_in.get("name", "")),
        idle_minutes=portal().settings.session_idle_s // 60,
        summary=summary,
    )
