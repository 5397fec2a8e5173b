"""Forgot User ID, forgot password, and the reset page a reset link opens.

Every request page answers the same whether or not the account exists; the
rules live in services/auth/recovery.py.
"""

from __future__ import annotations

import time
from typing import cast

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from services.auth import credentials, events, link_tokens
from services.auth.password_policy import PolicyViolation
from services.auth.recovery import Answer, Recovery, RecoveryAnswer
from services.auth.store.models import User
from services.auth.web.app import container
from services.auth.web.signin_views import origin
from services.common.db import transaction
from services.common.web import check_csrf, unavailable_page
from services.common.web_sessions import ServerSession

bp = Blueprint("recovery", __name__)


def _refused(answer: RecoveryAnswer) -> Response | None:
    if answer.answer is Answer.UNAVAILABLE:
        return unavailable_page()
    if answer.answer is Answer.THROTTLED:
        minutes = max(1, -(-answer.retry_after_s // 60))
        response = current_app.make_response(
            (render_template("recovery_throttled.html", minutes=minutes), 429)
        )
        response.headers["Retry-After"] = str(answer.retry_after_s)
        return response
    return None


@bp.get("/forgot-user-id")
def forgot_user_id_form() -> str:
    return render_template("forgot_user_id.html", error=None)


@bp.post("/forgot-user-id")
def forgot_user_id_submit() -> Response | str | tuple[str, int]:
    check_csrf()
    email = request.form.get("email", "").strip()[:254]
    if "@" not in email or len(email) < 3:
        return render_template(
            "forgot_user_id.html", error="Enter the email address you use for Provider Center."
        ), 400
    answer = Recovery(container()).forgot_user_id(email, origin())
    return _refused(answer) or render_template("recovery_sent.html", kind="user_id")


@bp.get("/forgot-password")
def forgot_password_form() -> str:
    return render_template("forgot_password.html", error=None, user_id="")


@bp.post("/forgot-password")
def forgot_password_submit() -> Response | str | tuple[str, int]:
    check_csrf()
    user_id = request.form.get("user_id", "").strip()[:64]
    email = request.form.get("email", "").strip()[:254]
    if not user_id or "@" not in email:
        return render_template(
            "forgot_password.html", error="Enter your User ID and the email address on file.", user_id=user_id
        ), 400
    answer = Recovery(container()).forgot_password(user_id, email, origin())
    return _refused(answer) or render_template("recovery_sent.html", kind="password")


@bp.get("/reset-password")
def reset_form() -> str | tuple[str, int]:
    token = request.args.get("token", "")
    user = Recovery(container()).reset_target(token)
    if user is None:
        return render_template("link_invalid.html"), 400
    return render_template("reset_password.html", token=token, error=None)


@bp.post("/reset-password")
def reset_submit() -> str | tuple[str, int]:
    check_csrf()
    token = request.form.get("token", "")[:200]
    new = request.form.get("new_password", "")[:2048]
    if new != request.form.get("confirm_password", "")[:2048]:
        return render_template(
            "reset_password.html", token=token, error="The two passwords are not the same."
        ), 400
    result = Recovery(container()).reset_password(token, new, origin())
    if result is None:
        return render_template("link_invalid.html"), 400
    if isinstance(result, PolicyViolation):
        return render_template("reset_password.html", token=token, error=result.message), 400
    # "Sign in" leads to the portal's front door: through sign-in (both factors) to the dashboard.
    return render_template("password_reset_done.html", portal_url=container().settings.portal_url)


@bp.get("/invite")
def invite_form() -> str | tuple[str, int]:
    token = request.args.get("token", "")
    c = container()
    with c.db() as db:
        user_pk = link_tokens.peek(db, token, "invite")
        user = db.get(User, user_pk) if user_pk else None
    if user is None or user.status != "invited":
        return render_template("link_invalid.html"), 400
    return render_template("invite.html", token=token, user=user, error=None)


@bp.post("/invite")
def invite_submit() -> Response | str | tuple[str, int]:
    """Set the first password; then the authenticator enrollment of the sign-in flow follows."""
    check_csrf()
    token = request.form.get("token", "")[:200]
    new = request.form.get("new_password", "")[:2048]
    c = container()
    with transaction(c.db) as db:
        user_pk = link_tokens.peek(db, token, "invite")
        user = db.get(User, user_pk) if user_pk else None
        if user is None or user.status != "invited":
            return render_template("link_invalid.html"), 400
        if new != request.form.get("confirm_password", "")[:2048]:
            return render_template(
                "invite.html", token=token, user=user, error="The two passwords are not the same."
            ), 400
        violation = credentials.policy_violation(c, db, user, new)
        if violation is not None:
            return render_template("invite.html", token=token, user=user, error=violation.message), 400
        if link_tokens.consume(db, token, "invite") is None:
            return render_template("link_invalid.html"), 400
        user.status = "active"
        credentials.set_password(c, db, user, new, origin=origin(), reason="invitation")
        events.record(
            db,
            "staff.invitation_accepted",
            user_id=user.user_id,
            practice_id=user.practice_id,
            origin=origin(),
        )
        user_pk, user_id, enrolled = user.id, user.user_id, user.totp_enrolled_at is not None
    cast(ServerSession, session).regenerate()
    session.pop("auth", None)
    session["pending"] = {"user_pk": user_pk, "user_id": user_id, "at": time.time(), "enroll": not enrolled}
    session["after_sign_in"] = "portal"
    if enrolled:
        return redirect(url_for("signin.verify_form"))
    return redirect(url_for("signin.enroll_form"))
