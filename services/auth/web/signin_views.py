"""Sign-in pages: User ID + password, then the verification code (or first
the authenticator enrollment), plus the unlock link from the lockout email.

The form contract (DESIGN.md): inputs ``user_id`` and ``password``, then
``code``; a hidden ``csrf_token``; errors in ``role="alert"``. The rules are
in services/auth/signin.py; this module only maps outcomes to pages.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import cast
from urllib.parse import urlencode

import redis
import segno
from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from services.auth import credentials, events, link_tokens, totp
from services.auth.devices import COOKIE as DEVICE_COOKIE
from services.auth.devices import MAX_AGE_S as DEVICE_MAX_AGE_S
from services.auth.events import Origin
from services.auth.signin import Outcome, Result, SignIn
from services.auth.store.models import User
from services.auth.web.app import container
from services.common.db import transaction
from services.common.web import check_csrf, unavailable_page
from services.common.web_sessions import ServerSession

bp = Blueprint("signin", __name__)

PENDING_MAX_AGE_S = 300
BAD_CREDENTIALS = "The User ID or password is not right. Check them and try again."
BAD_CODE = "That verification code is not right. Enter the current code from your authenticator app."


def origin() -> Origin:
    return Origin(ip=g.origin_ip, user_agent=request.headers.get("User-Agent", "")[:300])


def device_cookie_name() -> str:
    return f"__Host-{DEVICE_COOKIE}" if container().settings.tls else DEVICE_COOKIE


def device_cookie() -> str | None:
    return request.cookies.get(device_cookie_name())


def _tx() -> str:
    tx = request.values.get("tx", "")
    return tx if tx in session.get("authz", {}) else ""


def _refusal(result: Result, template: str, **context: object) -> Response | tuple[str, int] | None:
    """The page for a refused attempt (locked, throttled, Redis down), or None to go on."""
    if result.outcome is Outcome.UNAVAILABLE:
        return unavailable_page()
    if result.outcome is Outcome.THROTTLED:
        minutes = max(1, round(result.retry_after_s / 60))
        response = current_app.make_response((render_template("throttled.html", minutes=minutes), 429))
        response.headers["Retry-After"] = str(result.retry_after_s)
        return response
    if result.outcome is Outcome.LOCKED:
        permanent = result.retry_after_s > 86400
        # A permanent lock's end is far past what datetime can hold: it has no time to show.
        until = (
            ""
            if permanent
            else datetime.fromtimestamp(time.time() + result.retry_after_s, UTC).strftime("%H:%M UTC")
        )
        response = current_app.make_response(
            (
                render_template(
                    "locked.html",
                    minutes=max(1, -(-result.retry_after_s // 60)),
                    until=until,
                    permanent=permanent,
                ),
                423,
            )
        )
        response.headers["Retry-After"] = str(min(result.retry_after_s, 86400))
        return response
    return None


@bp.before_request
def _fail_closed_without_redis() -> Response | None:
    """Every sign-in page needs Redis (its session, the CSRF token in it, the lockout
    counters). A browser without a session cookie would otherwise get the page
    rendered and then a 500 when its new session cannot be saved; ask first."""
    try:
        container().redis.ping()
    except redis.RedisError:
        return unavailable_page()
    return None


@bp.get("/signin")
def signin_form() -> str:
    tx = _tx()
    hint, again = "", False
    if tx:
        args = session["authz"][tx].get("args", {})
        hint = args.get("login_hint", "")[:64]
        # An application asking the same person to prove it is them again (a step-up before a
        # large refund, say: prompt=login or max_age with their User ID) gets a page that says so.
        again = bool(hint) and ("login" in args.get("prompt", "").split() or "max_age" in args)
    return render_template("signin.html", tx=tx, user_id=hint, again=again, error=None)


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
    result = SignIn(container()).check_password(user_id, password, origin(), device_cookie())
    refused = _refusal(result, "signin.html")
    if refused is not None:
        return refused
    if result.outcome is Outcome.BAD_CREDENTIALS:
        return render_template("signin.html", tx=tx, user_id=user_id, error=BAD_CREDENTIALS), 401
    if result.outcome is Outcome.SUSPENDED:
        return render_template("suspended.html"), 403
    cast(ServerSession, session).regenerate()
    session.pop("auth", None)
    session["pending"] = {
        "user_pk": result.user_pk,
        "user_id": result.user_id,
        "at": time.time(),
        "enroll": result.outcome is Outcome.NEEDS_ENROLLMENT,
    }
    if result.outcome is Outcome.NEEDS_ENROLLMENT:
        return redirect(url_for("signin.enroll_form", tx=tx or None))
    return redirect(url_for("signin.verify_form", tx=tx or None))


def _pending() -> dict | None:
    pending = session.get("pending")
    if not pending or time.time() - pending["at"] > PENDING_MAX_AGE_S:
        return None
    return dict(pending)


def _start_again() -> Response:
    return redirect(url_for("signin.expired"))


@bp.get("/signin/expired")
def expired() -> tuple[str, int]:
    return render_template("expired.html"), 400


@bp.get("/signin/verify")
def verify_form() -> Response | str:
    pending = _pending()
    if pending is None or pending.get("enroll"):
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
    result = SignIn(container()).check_code(pending["user_pk"], code, origin(), device_cookie())
    refused = _refusal(result, "verify.html")
    if refused is not None:
        return refused
    if result.outcome is not Outcome.OK:
        return render_template("verify.html", tx=tx, error=BAD_CODE), 401
    return complete_sign_in(pending["user_pk"], pending["user_id"], list(result.amr), tx)


def _qr_data_uri(uri: str) -> str:
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#1d2733")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@bp.get("/signin/enroll")
def enroll_form() -> Response | str:
    pending = _pending()
    if pending is None or not pending.get("enroll"):
        return _start_again()
    secret = pending.get("secret") or totp.new_secret()
    if "secret" not in pending:
        pending["secret"] = secret
        session["pending"] = pending
    return _render_enroll(pending, secret, None)


def _render_enroll(pending: dict, secret: str, error: str | None) -> str:
    uri = totp.provisioning_uri(secret, pending["user_id"], "Provider Center")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template("enroll.html", tx=_tx(), qr=_qr_data_uri(uri), secret=grouped, error=error)


@bp.post("/signin/enroll")
def enroll_submit() -> Response | tuple[str, int]:
    check_csrf()
    pending = _pending()
    if pending is None or not pending.get("enroll") or "secret" not in pending:
        return _start_again()
    code = request.form.get("code", "")[:64]
    step = totp.matching_step(pending["secret"], code, time.time())
    if step is None:
        return _render_enroll(pending, pending["secret"], BAD_CODE), 401
    c = container()
    # The confirming code is an accepted code like any other: it must not work a second time.
    try:
        fresh = SignIn(c).claim_step(pending["user_pk"], step)
    except redis.RedisError:
        return unavailable_page()
    if not fresh:
        return _render_enroll(pending, pending["secret"], BAD_CODE), 401
    with transaction(c.db) as db:
        user = db.get(User, pending["user_pk"])
        if user is None or user.status != "active" or user.totp_enrolled_at is not None:
            return _start_again()
        codes = credentials.enroll_totp(c, db, user, pending["secret"], origin=origin())
    pending.pop("secret")
    pending["enroll"] = False
    pending["enrolled"] = True
    session["pending"] = pending
    return render_template("recovery_codes.html", codes=codes, tx=_tx()), 200


@bp.post("/signin/enroll/done")
def enroll_done() -> Response:
    check_csrf()
    pending = _pending()
    if pending is None or not pending.get("enrolled"):
        return _start_again()
    c = container()
    # The enrollment code proved the authenticator; this is the completed sign-in.
    try:
        c.lockout.unlock(pending["user_id"])
    except Exception:  # noqa: BLE001 - failures counters are best effort here
        return unavailable_page()
    with transaction(c.db) as db:
        user = db.get(User, pending["user_pk"])
        if user is not None:
            from services.common.db import utcnow

            user.last_sign_in_at = utcnow()
            events.record(
                db,
                "sign_in.success",
                user_id=user.user_id,
                practice_id=user.practice_id,
                origin=origin(),
                details={"factor": "otp", "enrolled": True},
            )
    return complete_sign_in(pending["user_pk"], pending["user_id"], ["pwd", "otp"], _tx())


def complete_sign_in(user_pk: str, user_id: str, amr: list[str], tx: str) -> Response:
    """Both factors passed: a new auth session (sid), a new cookie id, the device
    remembered, and on to the client that asked."""
    c = container()
    auth_session = c.sessions.create(user_pk, amr, g.origin_ip, request.headers.get("User-Agent", ""))
    cast(ServerSession, session).regenerate()
    session.pop("pending", None)
    session["auth"] = {"user_pk": user_pk, "sid": auth_session.sid, "auth_time": auth_session.auth_time}
    if tx and tx in session.get("authz", {}):
        authz = dict(session["authz"])
        entry = dict(authz[tx])
        entry["signed_in_at"] = auth_session.auth_time
        authz[tx] = entry
        session["authz"] = authz
        response = redirect(url_for("oauth.authorize") + "?" + urlencode({**entry["args"], "login_tx": tx}))
    elif session.pop("after_sign_in", None) == "portal":
        # An invited user who just set up their account goes straight to work.
        response = redirect(c.settings.portal_url + "/")
    else:
        response = redirect(url_for("account.home"))
    response.set_cookie(
        device_cookie_name(),
        c.devices.remember(device_cookie(), user_id),
        max_age=DEVICE_MAX_AGE_S,
        httponly=True,
        secure=c.settings.tls,
        samesite="Lax",
        path="/",
    )
    return response


@bp.get("/unlock")
def unlock_form() -> tuple[str, int] | str:
    token = request.args.get("token", "")
    with container().db() as db:
        valid = link_tokens.peek(db, token, "unlock") is not None
    if not valid:
        return render_template("link_invalid.html"), 400
    # A button, not an automatic unlock: mail scanners follow links.
    return render_template("unlock.html", token=token)


@bp.post("/unlock")
def unlock_submit() -> tuple[str, int] | str:
    check_csrf()
    c = container()
    with transaction(c.db) as db:
        user_pk = link_tokens.consume(db, request.form.get("token", ""), "unlock")
        user = db.get(User, user_pk) if user_pk else None
        if user is None:
            return render_template("link_invalid.html"), 400
        c.lockout.unlock(user.user_id)
        events.record(
            db,
            "account.unlocked",
            user_id=user.user_id,
            practice_id=user.practice_id,
            origin=origin(),
            details={"via": "email_link"},
        )
    return render_template("unlocked.html")
