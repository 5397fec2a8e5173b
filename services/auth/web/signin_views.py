"""Sign-in pages: User ID + password, then the verification code.

The form contract (DESIGN.md): inputs ``user_id`` and ``password``, then
``code``; a hidden ``csrf_token``; errors in ``role="alert"``.
"""

from __future__ import annotations

import time
from typing import cast
from urllib.parse import urlencode

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from services.auth.events import Origin
from services.auth.signin import Outcome, SignIn
from services.auth.web.app import container
from services.common.web import check_csrf
from services.common.web_sessions import ServerSession

bp = Blueprint("signin", __name__)

PENDING_MAX_AGE_S = 300
BAD_CREDENTIALS = "The User ID or password is not right. Check them and try again."


def origin() -> Origin:
    return Origin(ip=g.origin_ip, user_agent=request.headers.get("User-Agent", "")[:300])


def _tx() -> str:
    tx = request.values.get("tx", "")
    return tx if tx in session.get("authz", {}) else ""


@bp.get("/signin")
def signin_form() -> str:
    tx = _tx()
    hint = ""
    if tx:
        hint = session["authz"][tx].get("args", {}).get("login_hint", "")[:64]
    return render_template("signin.html", tx=tx, user_id=hint, error=None)


@bp.post("/signin")
def signin_submit() -> Response | tuple[str, int]:
    check_csrf()
    tx = _tx()
    user_id = request.form.get("user_id", "")[:200]
    password = request.form.get("password", "")[:1024]
    if not user_id.strip() or not password:
        return render_template(
            "signin.html", tx=tx, user_id=user_id, error="Enter your User ID and password."
        ), 400
    result = SignIn(container()).check_password(user_id, password, origin())
    if result.outcome is Outcome.BAD_CREDENTIALS:
        return render_template("signin.html", tx=tx, user_id=user_id, error=BAD_CREDENTIALS), 401
    if result.outcome is Outcome.SUSPENDED:
        return render_template("suspended.html"), 403
    server_session = cast(ServerSession, session)
    server_session.regenerate()
    session.pop("auth", None)
    session["pending"] = {
        "user_pk": result.user_pk,
        "user_id": result.user_id,
        "at": time.time(),
        "enroll": result.outcome is Outcome.NEEDS_ENROLLMENT,
    }
    if result.outcome is Outcome.NEEDS_ENROLLMENT:
        return redirect(url_for("signin.enroll", tx=tx or None))
    return redirect(url_for("signin.verify_form", tx=tx or None))


def _pending() -> dict | None:
    pending = session.get("pending")
    if not pending or time.time() - pending["at"] > PENDING_MAX_AGE_S:
        return None
    return pending


def _start_again() -> Response:
    return redirect(url_for("signin.expired"))


@bp.get("/signin/expired")
def expired() -> tuple[str, int]:
    return render_template("expired.html"), 400


@bp.get("/signin/verify")
def verify_form() -> Response | str:
    if _pending() is None:
        return _start_again()
    return render_template("verify.html", tx=_tx(), error=None)


@bp.post("/signin/verify")
def verify_submit() -> Response | tuple[str, int]:
    check_csrf()
    pending = _pending()
    if pending is None or pending.get("enroll"):
        return _start_again()
    tx = _tx()
    code = request.form.get("code", "")[:64]
    result = SignIn(container()).check_code(pending["user_pk"], code, origin())
    if result.outcome is not Outcome.OK:
        return render_template(
            "verify.html", tx=tx, error="That verification code is not right. Try the current code."
        ), 401
    return complete_sign_in(pending["user_pk"], list(result.amr), tx)


@bp.get("/signin/enroll")
def enroll() -> Response | tuple[str, int]:
    # Enrollment of the authenticator comes with the second-factor work; until a
    # user has one, they cannot finish signing in.
    if _pending() is None:
        return _start_again()
    return render_template("enroll_required.html"), 403


def complete_sign_in(user_pk: str, amr: list[str], tx: str) -> Response:
    """Both factors passed: a new auth session (sid), a new cookie id, and on to the client."""
    c = container()
    auth_session = c.sessions.create(user_pk, amr, g.origin_ip, request.headers.get("User-Agent", ""))
    server_session = cast(ServerSession, session)
    server_session.regenerate()
    session.pop("pending", None)
    session["auth"] = {"user_pk": user_pk, "sid": auth_session.sid, "auth_time": auth_session.auth_time}
    if tx and tx in session.get("authz", {}):
        authz = dict(session["authz"])
        entry = dict(authz[tx])
        entry["signed_in_at"] = auth_session.auth_time
        authz[tx] = entry
        session["authz"] = authz
        return redirect(url_for("oauth.authorize") + "?" + urlencode({**entry["args"], "login_tx": tx}))
    return redirect(url_for("signin.signed_in"))


@bp.get("/")
def signed_in() -> Response | str:
    auth = session.get("auth")
    if not auth or container().sessions.get(auth["sid"]) is None:
        return redirect(url_for("signin.signin_form"))
    return render_template("signed_in.html", portal_url=container().settings.portal_url)
