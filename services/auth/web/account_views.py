"""The account pages every signed-in user has at auth: where they are signed
in, change password. (Account security belongs to the identity provider;
the portal links here.)"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from services.auth import credentials, token_store
from services.auth.store.models import Practice, User
from services.auth.web.app import container
from services.auth.web.signin_views import _fail_closed_without_redis, origin
from services.common.db import transaction
from services.common.web import check_csrf

bp = Blueprint("account", __name__)
bp.before_request(_fail_closed_without_redis)


def _signed_in_user_pk() -> str | None:
    auth = session.get("auth")
    if not auth or container().sessions.get(auth["sid"]) is None:
        return None
    return str(auth["user_pk"])


def _check_current_password(user_pk: str, password: str):  # type: ignore[no-untyped-def]
    """Re-authentication for a credential change, under the same lockout rules as sign-in
    (someone holding a stolen session must not get unlimited password guesses here).

    None when right; a message when wrong; a response when locked, throttled or unavailable.
    """
    from services.auth.signin import Outcome, SignIn
    from services.auth.web.signin_views import _refusal, device_cookie

    with container().db() as db:
        user = db.get(User, user_pk)
        user_id = user.user_id if user else ""
    result = SignIn(container()).check_password(user_id, password, origin(), device_cookie())
    refused = _refusal(result, "change_password.html")
    if refused is not None:
        return refused
    if result.outcome is Outcome.BAD_CREDENTIALS:
        return "Your current password is not right."
    return None


@bp.get("/")
def home() -> Response | str:
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    with container().db() as db:
        user = db.get(User, user_pk)
        practice = db.get(Practice, user.practice_id) if user else None
    return render_template(
        "account.html",
        user=user,
        practice=practice,
        portal_url=container().settings.portal_url,
        message=request.args.get("done"),
    )


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> Response | str | tuple[str, int]:
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    if request.method == "GET":
        return render_template("change_password.html", error=None)
    check_csrf()
    current = request.form.get("current_password", "")[:1024]
    new = request.form.get("new_password", "")[:2048]
    confirm = request.form.get("confirm_password", "")[:2048]
    c = container()
    refused = _check_current_password(user_pk, current)
    if refused is not None:
        return (
            refused
            if not isinstance(refused, str)
            else (render_template("change_password.html", error=refused), 400)
        )
    with transaction(c.db) as db:
        user = db.get(User, user_pk)
        if user is None:
            return redirect(url_for("signin.signin_form"))
        if new != confirm:
            return render_template(
                "change_password.html", error="The two new passwords are not the same."
            ), 400
        violation = credentials.set_password(c, db, user, new, origin=origin(), reason="change")
        if violation is not None:
            return render_template("change_password.html", error=violation.message), 400
    # Other sessions of this user end, with their tokens: whoever knew the old password is out.
    ended = c.sessions.end_all_for_user(user_pk, except_sid=session["auth"]["sid"])
    with transaction(c.db) as db:
        for sid in ended:
            token_store.revoke_session(db, c.revocation, sid)
    return redirect(url_for("account.home", done="password"))


@bp.get("/account/activity")
def activity() -> Response | str:
    """Recent sign-in activity from the security event log."""
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    from services.auth import events

    with container().db() as db:
        user = db.get(User, user_pk)
        recent = events.recent(db, user_id=user.user_id, limit=50) if user else []
    return render_template("account_activity.html", events=recent)


@bp.get("/account/sessions")
def sessions() -> Response | str:
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    from datetime import UTC, datetime

    current = session["auth"]["sid"]
    rows = [
        {
            "started": datetime.fromtimestamp(s.created, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "ip": s.ip,
            "user_agent": s.user_agent,
            "current": s.sid == current,
        }
        for s in sorted(container().sessions.list_for_user(user_pk), key=lambda s: s.created, reverse=True)
    ]
    return render_template("account_sessions.html", sessions=rows, message=request.args.get("done"))


@bp.post("/account/sessions/end-others")
def end_other_sessions() -> Response:
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    check_csrf()
    c = container()
    ended = c.sessions.end_all_for_user(user_pk, except_sid=session["auth"]["sid"])
    with transaction(c.db) as db:
        for sid in ended:
            token_store.revoke_session(db, c.revocation, sid)
        user = db.get(User, user_pk)
        if user is not None:
            from services.auth import events

            events.record(
                db,
                "sessions.revoked",
                user_id=user.user_id,
                practice_id=user.practice_id,
                origin=origin(),
                details={"ended": len(ended), "via": "account page"},
            )
    return redirect(url_for("account.sessions", done=str(len(ended))))


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
def regenerate_recovery_codes() -> Response | str | tuple[str, int]:
    """New recovery codes, after the current password (re-authentication for a credential change)."""
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    if request.method == "GET":
        return render_template("account_recovery_codes.html", codes=None, error=None)
    check_csrf()
    from services.auth import events, recovery_codes

    c = container()
    refused = _check_current_password(user_pk, request.form.get("current_password", "")[:1024])
    if refused is not None:
        return (
            refused
            if not isinstance(refused, str)
            else (render_template("account_recovery_codes.html", codes=None, error=refused), 400)
        )
    with transaction(c.db) as db:
        user = db.get(User, user_pk)
        if user is None:
            return redirect(url_for("signin.signin_form"))
        codes = recovery_codes.issue(db, c.settings.totp_key, user.id)
        events.record(
            db,
            "mfa.recovery_codes_regenerated",
            user_id=user.user_id,
            practice_id=user.practice_id,
            origin=origin(),
        )
    return render_template("account_recovery_codes.html", codes=codes, error=None)


@bp.get("/account/apps")
def connected_apps() -> Response | str:
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    from services.auth import consents

    with container().db() as db:
        rows = [
            (client.client_id, client.name, consent.scopes)
            for consent, client in consents.for_user(db, user_pk)
        ]
    return render_template("account_apps.html", apps=rows)


@bp.post("/account/apps/revoke")
def revoke_app() -> Response:
    user_pk = _signed_in_user_pk()
    if user_pk is None:
        return redirect(url_for("signin.signin_form"))
    check_csrf()
    from services.auth import consents

    with transaction(container().db) as db:
        consents.revoke(db, user_pk, request.form.get("client_id", "")[:100])
    return redirect(url_for("account.connected_apps"))
