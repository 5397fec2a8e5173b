"""OAuth 2.0 / OpenID Connect endpoints: discovery, JWKS, authorize, token,
end-session. The rules live in services.auth.oauth; this is the HTTP edge."""

from __future__ import annotations

import secrets
import time
from typing import cast
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from services.auth import token_store
from services.auth.oauth.discovery import metadata
from services.auth.oauth.server import ProviderServer, load_principal
from services.auth.web.app import container
from services.common.db import transaction
from services.common.web_sessions import ServerSession

bp = Blueprint("oauth", __name__)

MAX_PENDING_REQUESTS = 5


def server() -> ProviderServer:
    return cast(ProviderServer, current_app.extensions["oauth_server"])


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    response = jsonify(metadata(container().settings.issuer))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/jwks.json")
def jwks() -> Response:
    response = jsonify(container().signing.jwks())
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def _error_page(message: str) -> tuple[str, int]:
    """Errors that must not redirect: the client or its redirect URI cannot be trusted."""
    return render_template("authorize_error.html", message=message), 400


def _redirect_error(grant_redirect_uri: str, error: str, state: str | None) -> Response:
    params = {"error": error}
    if state:
        params["state"] = state
    separator = "&" if "?" in grant_redirect_uri else "?"
    return redirect(grant_redirect_uri + separator + urlencode(params))


def _signed_in_principal():  # type: ignore[no-untyped-def]
    auth = session.get("auth")
    if not auth:
        return None
    return load_principal(container(), auth["user_pk"], auth["sid"])


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response | tuple[str, int]:
    try:
        grant = server().get_consent_grant(end_user=None)
    except OAuth2Error as error:
        if getattr(error, "redirect_uri", None):
            return cast(Response, server().handle_error_response(request, error))
        return _error_page(error.description or error.error)
    payload = grant.request.payload
    redirect_uri = payload.redirect_uri
    state = payload.state
    args = {key: value for key, value in request.values.items() if key not in {"login_tx", "csrf_token"}}
    prompts = set(args.get("prompt", "").split())
    if "none" in prompts and len(prompts) > 1:
        return _redirect_error(redirect_uri, "invalid_request", state)

    principal = _signed_in_principal()
    fresh = _fresh_sign_in(request.values.get("login_tx", ""), principal)
    if principal is not None and not fresh and _needs_fresh_sign_in(prompts, args, principal.auth_time):
        principal = None
    if principal is None:
        if "none" in prompts:
            return _redirect_error(redirect_uri, "login_required", state)
        return _start_sign_in(args)
    return cast(Response, server().create_authorization_response(grant_user=principal, grant=grant))


def _needs_fresh_sign_in(prompts: set[str], args: dict, auth_time: int) -> bool:
    """``prompt=login`` always asks again; ``max_age`` asks when the last sign-in is older."""
    if "login" in prompts:
        return True
    max_age = args.get("max_age", "")
    return max_age.isdigit() and time.time() - auth_time > int(max_age)


def _fresh_sign_in(tx: str, principal) -> bool:  # type: ignore[no-untyped-def]
    """True when this request resumes a sign-in just completed for it (so
    ``prompt=login`` and ``max_age`` are satisfied and must not loop)."""
    if not tx or principal is None:
        return False
    pending = dict(session.get("authz", {}))
    entry = pending.pop(tx, None)
    session["authz"] = pending
    return bool(entry and entry.get("signed_in_at") and entry["signed_in_at"] >= principal.auth_time)


def _start_sign_in(args: dict) -> Response:
    pending = dict(session.get("authz", {}))
    while len(pending) >= MAX_PENDING_REQUESTS:
        pending.pop(next(iter(pending)))
    tx = secrets.token_urlsafe(12)
    pending[tx] = {"args": args, "created": time.time()}
    session["authz"] = pending
    return redirect(url_for("signin.signin_form", tx=tx))


@bp.post("/token")
def token() -> Response:
    response = cast(Response, server().create_token_response())
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/logout", methods=["GET", "POST"])
def end_session() -> Response | tuple[str, int]:
    """RP-initiated logout: end the auth session and revoke its tokens, then go
    back to the client only if the URI is registered for it exactly."""
    c = container()
    values = request.values
    post_logout = values.get("post_logout_redirect_uri", "")
    client_id = values.get("client_id", "")
    state = values.get("state", "")
    hint = values.get("id_token_hint", "")
    if hint and not client_id:
        client_id = _client_from_id_token(hint)
    target = None
    if post_logout:
        client = server().query_client(client_id) if client_id else None
        if client is None or not client.check_post_logout_redirect_uri(post_logout):
            return _error_page("The sign-out request named an address that is not registered.")
        target = post_logout + (
            ("&" if "?" in post_logout else "?") + urlencode({"state": state}) if state else ""
        )
    auth = session.get("auth")
    if auth:
        c.sessions.end(auth["sid"])
        with transaction(c.db) as db:
            token_store.revoke_session(db, c.revocation, auth["sid"])
    cast(ServerSession, session).destroy()
    if target:
        return redirect(target)
    return render_template("signed_out.html")


def _client_from_id_token(id_token: str) -> str:
    """The audience of an ID token we issued (signature checked; expiry is allowed to have passed)."""
    from authlib.jose import JsonWebToken
    from authlib.jose.errors import JoseError

    try:
        header_kid = _kid(id_token)
        key = container().signing.get(header_kid) if header_kid else None
        if key is None:
            return ""
        claims = JsonWebToken(["ES256"]).decode(id_token, key.private)
    except (JoseError, ValueError):
        return ""
    aud = claims.get("aud")
    if isinstance(aud, list):
        return str(aud[0]) if aud else ""
    return str(aud or "")


def _kid(token: str) -> str:
    import base64
    import json

    try:
        head = token.split(".")[0]
        return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))).get("kid", ""))
    except (ValueError, IndexError, AttributeError):
        return ""
