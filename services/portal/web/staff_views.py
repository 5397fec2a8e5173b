"""Staff management pages for the practice's account administrators.

Every action goes to auth's ``UserAdminService`` with the signed-in user's own
access token (auth checks admin role and practice on every call); the portal
adds its permission check in front (``user_activity``, admins only) and writes
each change, and each refusal, to its own audit log.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from services.common.db import transaction
from services.common.web import check_csrf
from services.portal.errors import NotFound
from services.portal.permissions import ROLE_LABELS, Actor, Permission
from services.portal.service_layer.unit import Deps, guard
from services.portal.staff import (
    ROLES,
    StaffAdmin,
    StaffInvalid,
    StaffRefused,
    StaffSignedOut,
    StaffUnavailable,
)
from services.portal.web import pages
from services.portal.web.actors import page_actor
from services.portal.web.context import current_session, portal

bp = Blueprint("staff", __name__, url_prefix="/staff")
EXTENSION = "services.portal.staff"

ACTION_LABELS = {
    "suspend": "suspended",
    "reactivate": "reactivated",
    "unlock": "unlocked",
}


@bp.record_once
def _client(state) -> None:  # type: ignore[no-untyped-def]
    """One client per app, unless a test put its own there first."""
    settings = state.app.extensions["services.portal"].settings
    state.app.extensions.setdefault(EXTENSION, StaffAdmin(settings.auth_grpc_addr))


def admin() -> StaffAdmin:
    return cast(StaffAdmin, current_app.extensions[EXTENSION])


def _token() -> str:
    p = portal()
    tokens = p.token_store.load(g.signed_in["ref"], p.session_ttl_s(current_session()))
    if tokens is None:
        raise StaffSignedOut("session tokens gone")
    return tokens.access_token


def _actor(action: str, object_id: str = "") -> Actor:
    """The signed-in admin; refused (and audited) without the user_activity permission."""
    actor = page_actor()
    guard(_deps(), actor, Permission.USER_ACTIVITY, action, "staff_user", object_id)
    return actor


def _deps() -> Deps:
    p = portal()
    return Deps(p.db, p.clock)


def audit(actor: Actor, action: str, object_id: str = "", outcome: str = "ok", detail: str = "") -> None:
    deps = _deps()
    with transaction(deps.db) as session:
        deps.audit.append(
            session,
            actor,
            action,
            object_type="staff_user",
            object_id=object_id,
            outcome=outcome,
            detail=detail,
        )


@bp.errorhandler(StaffRefused)
def _refused(exc: StaffRefused) -> Response:
    return pages.message(403, "Not allowed", str(exc), link=url_for("staff.index"), link_text="Back to staff")


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return pages.message(
        404,
        "Not found",
        "No such staff member at this practice.",
        link=url_for("staff.index"),
        link_text="Back to staff",
    )


@bp.errorhandler(StaffUnavailable)
def _unavailable(exc: StaffUnavailable) -> Response:
    return pages.unavailable()


@bp.errorhandler(StaffSignedOut)
def _signed_out(exc: StaffSignedOut) -> Response:
    return pages.message(
        401,
        "Please sign in again",
        "Your sign-in has ended.",
        link=url_for("signin.login"),
        link_text="Sign in",
    )


def _invalid_page(template: str, exc: StaffInvalid, **context: object) -> Response:
    status = 409 if exc.code in ("ALREADY_EXISTS", "FAILED_PRECONDITION") else 400
    body = render_template(template, error=str(exc), **context)
    return Response(body, status=status, mimetype="text/html")


def _roles_from_form() -> list[str]:
    return [r for r in request.form.getlist("roles") if r in ROLES]


@bp.get("")
def index() -> str:
    actor = _actor("staff.list")
    query = request.args.get("q", "").strip()[:100]
    users, total = admin().list_users(_token(), query=query, limit=200)
    pending = admin().mfa_requests(_token())
    return render_template(
        "staff/index.html",
        users=users,
        total=total,
        q=query,
        pending=pending,
        done=request.args.get("done", ""),
        role_labels=ROLE_LABELS,
        actor_sub=actor.sub,
    )


@bp.get("/invite")
def invite_form() -> str:
    _actor("staff.invite")
    return render_template(
        "staff/invite.html", values={}, chosen=["front_desk"], roles=ROLES, role_labels=ROLE_LABELS, error=""
    )


@bp.post("/invite")
def invite() -> Response:
    check_csrf()
    form = request.form
    user_id = form.get("user_id", "").strip()[:64]
    actor = _actor("staff.invite", user_id)
    roles = _roles_from_form()
    try:
        member = admin().invite(
            _token(), user_id, form.get("email", "").strip()[:254], form.get("name", "").strip()[:200], roles
        )
    except StaffInvalid as exc:
        audit(actor, "staff.invite", user_id, "rejected", str(exc))
        return _invalid_page(
            "staff/invite.html", exc, values=form, chosen=roles, roles=ROLES, role_labels=ROLE_LABELS
        )
    audit(actor, "staff.invite", member.user_id, detail="roles " + " ".join(member.roles))
    return redirect(url_for("staff.detail", user_id=member.user_id, done="invited"))


@bp.get("/<user_id>")
def detail(user_id: str) -> str:
    _actor("staff.view", user_id)
    token = _token()
    member = admin().get_user(token, user_id)
    events = admin().activity(token, user_id)
    return render_template(
        "staff/detail.html",
        member=member,
        events=events,
        roles=ROLES,
        role_labels=ROLE_LABELS,
        done=request.args.get("done", ""),
        error="",
    )


@bp.post("/<user_id>/roles")
def set_roles(user_id: str) -> Response:
    check_csrf()
    actor = _actor("staff.roles", user_id)
    roles = _roles_from_form()
    token = _token()
    try:
        member = admin().set_roles(token, user_id, roles)
    except StaffInvalid as exc:
        audit(actor, "staff.roles", user_id, "rejected", str(exc))
        member = admin().get_user(token, user_id)
        return _invalid_page(
            "staff/detail.html",
            exc,
            member=member,
            events=admin().activity(token, user_id),
            roles=ROLES,
            role_labels=ROLE_LABELS,
            done="",
        )
    audit(actor, "staff.roles", user_id, detail="roles " + " ".join(member.roles))
    return redirect(url_for("staff.detail", user_id=user_id, done="roles"))


@bp.post("/<user_id>/<any(suspend, reactivate, unlock):action>")
def act(user_id: str, action: str) -> Response:
    check_csrf()
    actor = _actor(f"staff.{action}", user_id)
    token = _token()
    try:
        admin().act(token, action, user_id)
    except StaffInvalid as exc:
        audit(actor, f"staff.{action}", user_id, "rejected", str(exc))
        return _invalid_page(
            "staff/detail.html",
            exc,
            member=admin().get_user(token, user_id),
            events=admin().activity(token, user_id),
            roles=ROLES,
            role_labels=ROLE_LABELS,
            done="",
        )
    except StaffRefused as exc:
        audit(actor, f"staff.{action}", user_id, "denied", str(exc))
        raise
    audit(actor, f"staff.{action}", user_id)
    return redirect(url_for("staff.detail", user_id=user_id, done=ACTION_LABELS[action]))


@bp.post("/<user_id>/reset-mfa")
def reset_mfa(user_id: str) -> Response:
    check_csrf()
    actor = _actor("staff.reset_mfa", user_id)
    token = _token()
    try:
        result = admin().reset_mfa(token, user_id)
    except StaffInvalid as exc:
        audit(actor, "staff.reset_mfa", user_id, "rejected", str(exc))
        return _invalid_page(
            "staff/detail.html",
            exc,
            member=admin().get_user(token, user_id),
            events=admin().activity(token, user_id),
            roles=ROLES,
            role_labels=ROLE_LABELS,
            done="",
        )
    audit(
        actor, "staff.reset_mfa", user_id, outcome="ok", detail=f"{result.state} {result.request_id}".strip()
    )
    done = "mfa_reset" if result.state == "done" else "mfa_pending"
    return redirect(url_for("staff.detail", user_id=user_id, done=done))


@bp.get("/mfa-requests")
def mfa_requests() -> str:
    actor = _actor("staff.mfa_requests")
    return render_template(
        "staff/mfa_requests.html",
        requests=admin().mfa_requests(_token()),
        actor_sub=actor.sub,
        error="",
        done=request.args.get("done", ""),
    )


@bp.post("/mfa-requests/<request_id>/approve")
def approve(request_id: str) -> Response:
    check_csrf()
    request_id = request_id[:64]
    actor = _actor("staff.approve_mfa_reset", request_id)
    token = _token()
    try:
        result = admin().approve_mfa_reset(token, request_id)
    except StaffInvalid as exc:
        audit(actor, "staff.approve_mfa_reset", request_id, "rejected", str(exc))
        return _invalid_page(
            "staff/mfa_requests.html", exc, requests=admin().mfa_requests(token), actor_sub=actor.sub, done=""
        )
    audit(actor, "staff.approve_mfa_reset", result.user.user_id, detail=f"request {request_id}")
    return redirect(url_for("staff.mfa_requests", done="approved"))
