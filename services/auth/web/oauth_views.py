"""OAuth 2.0 / OpenID Connect endpoints: discovery, JWKS, authorize, token,
end-session. The rules live in services.auth.oauth; this is the HTTP edge."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import cast
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from services.auth import consents, token_store
from services.auth.oauth.discovery import metadata
from services.auth.oauth.server import ProviderServer, granted_scope, load_principal
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


def _redirect_error(
    grant_redirect_uri: str, error: str, state: str | None, description: str | None = None
) -> Response:
    params = {"error": error}
    if description:
        params["error_description"] = description
    if state:
        params["state"] = state
    separator = "&" if "?" in grant_redirect_uri else "?"
    return redirect(grant_redirect_uri + separator + urlencode(params))


def _signed_in_principal():  # type: ignore[no-untyped-def]
    auth = session.get("auth")
    if not auth:
        return None
    return load_principal(container(), auth["user_pk"], auth["sid"])


# Parameters that must not be repeated (RFC 6749 §3.1).
SINGLE_VALUED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "id_token_hint",
    "response_mode",
)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response | tuple[str, int]:
    values = request.values
    client = server().query_client(values.get("client_id", ""))
    if client is None:
        return _error_page("The application that sent you here is not registered (unknown client).")
    redirect_uri = values.get("redirect_uri", "")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return _error_page(
            "The application sent a return address (redirect URI) that is not registered for it."
        )
    # From here on the redirect URI is trusted, so errors go back to the client (OIDC Core §3.1.2.6).
    state = values.get("state")
    repeated = [name for name in SINGLE_VALUED if len(values.getlist(name)) > 1]
    if repeated:
        return _redirect_error(redirect_uri, "invalid_request", state, f"repeated parameter: {repeated[0]}")
    if "request" in values:
        return _redirect_error(redirect_uri, "request_not_supported", state)
    if "request_uri" in values:
        return _redirect_error(redirect_uri, "request_uri_not_supported", state)
    response_type = values.get("response_type")
    if not response_type:
        return _redirect_error(redirect_uri, "invalid_request", state, "response_type is required")
    if response_type != "code":
        return _redirect_error(redirect_uri, "unsupported_response_type", state)
    if "openid" not in values.get("scope", "").split():
        return _redirect_error(redirect_uri, "invalid_scope", state, "scope must include openid")
    if values.get("response_mode", "query") != "query":
        return _redirect_error(
            redirect_uri, "invalid_request", state, "only response_mode=query is supported"
        )
    principal = _signed_in_principal()
    try:
        # The signed-in user goes in, or Authlib's prompt check answers prompt=none
        # with login_required even when a session exists.
        grant = server().get_consent_grant(end_user=principal)
    except OAuth2Error as error:
        if getattr(error, "redirect_uri", None):
            return cast(Response, server().handle_error_response(request, error))
        return _error_page(error.description or error.error)
    args = {
        key: value for key, value in values.items() if key not in {"login_tx", "consent_tx", "csrf_token"}
    }
    prompts = set(args.get("prompt", "").split())
    if "none" in prompts and len(prompts) > 1:
        return _redirect_error(redirect_uri, "invalid_request", state, "prompt=none cannot be combined")
    if args.get("max_age") and not args["max_age"].isdigit():
        return _redirect_error(redirect_uri, "invalid_request", state, "max_age must be a number of seconds")

    scopes = granted_scope(client, grant.request.payload.scope).split()
    if "openid" not in scopes:
        return _redirect_error(redirect_uri, "invalid_scope", state, "this client may not ask for openid")
    fresh = _fresh_sign_in(values.get("login_tx", ""), principal)
    hint = args.get("id_token_hint")
    hinted: dict | None = None
    if hint:
        hinted = _id_token_claims(hint)
        if hinted is None:
            return _redirect_error(redirect_uri, "invalid_request", state, "id_token_hint is not valid")
        if principal is not None and not fresh and hinted.get("sub") != principal.user_pk:
            # Someone else is signed in here: never answer for them silently (OIDC Core §3.1.2.1).
            principal = None
    if principal is not None and not fresh and _needs_fresh_sign_in(prompts, args, principal.auth_time):
        principal = None
    if principal is None:
        if "none" in prompts:
            return _redirect_error(redirect_uri, "login_required", state)
        return _start_sign_in(args)
    if not client.first_party:
        asked_again = "consent" in prompts and not _consent_just_given(values.get("consent_tx", ""))
        with container().db() as db:
            has_consent = consents.covers(db, principal.user_pk, client.client_id, set(scopes))
        if asked_again or not has_consent:
            if "none" in prompts:
                return _redirect_error(redirect_uri, "consent_required", state)
            return _ask_consent(args, client.row.name, scopes)
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


# Token endpoint parameters that must not be repeated (RFC 6749 §3.2); Authlib
# would silently take the first.
TOKEN_SINGLE_VALUED = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
)


def _json_error(status: int, error: str, description: str) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/token")
def token() -> Response:
    repeated = [name for name in TOKEN_SINGLE_VALUED if len(request.values.getlist(name)) > 1]
    if repeated:
        return _json_error(400, "invalid_request", f"repeated parameter: {repeated[0]}")
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
    hinted: dict | None = None
    if hint:
        hinted = _id_token_claims(hint)
        if hinted is None:
            return _error_page("The sign-out request carried an ID token that we did not issue.")
        audience = hinted.get("aud")
        audiences = [str(a) for a in audience] if isinstance(audience, list) else [str(audience or "")]
        if client_id and client_id not in audiences:
            # OIDC RP-Initiated Logout §2: the client and the hint's audience must agree.
            return _error_page("The sign-out request named one application but carried another's ID token.")
        client_id = client_id or audiences[0]
    target = None
    if post_logout:
        client = server().query_client(client_id) if client_id else None
        if client is None or not client.check_post_logout_redirect_uri(post_logout):
            return _error_page("The sign-out request named an address that is not registered.")
        target = post_logout + (
            ("&" if "?" in post_logout else "?") + urlencode({"state": state}) if state else ""
        )
    auth = session.get("auth")
    if auth and not _sign_out_confirmed(auth, hinted if hint else None):
        # Without proof the request comes from the signed-in user's own client, ask
        # first: a link on another site must not sign people out (RP-Initiated Logout §2).
        keep = ("post_logout_redirect_uri", "client_id", "state", "id_token_hint")
        return render_template("confirm_sign_out.html", fields={k: values[k] for k in keep if values.get(k)})
    if auth:
        c.sessions.end(auth["sid"])
        with transaction(c.db) as db:
            token_store.revoke_session(db, c.revocation, auth["sid"])
    cast(ServerSession, session).destroy()
    if target:
        return redirect(target)
    return render_template("signed_out.html")


def _sign_out_confirmed(auth: dict, hinted: dict | None) -> bool:
    """A verified ID token of this very session, or a form from our own pages (CSRF checked)."""
    if hinted is not None and hinted.get("sid") == auth.get("sid"):
        return True
    if request.method != "POST":
        return False
    sent, expected = request.form.get("csrf_token", ""), session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(str(sent), str(expected))


def _id_token_claims(id_token: str) -> dict | None:
    """The claims of an ID token we issued (signature and issuer checked; expiry
    is allowed to have passed, as hints are often old), or None."""
    from authlib.jose import JsonWebToken
    from authlib.jose.errors import JoseError

    if not isinstance(id_token, str) or len(id_token) > 8192:
        return None
    try:
        header_kid = _kid(id_token)
        key = container().signing.get(header_kid) if header_kid else None
        if key is None:
            return None
        claims = JsonWebToken(["ES256"]).decode(id_token, key.private)
    except (JoseError, ValueError, TypeError):
        return None
    if claims.get("iss") != container().settings.issuer:
        return None
    return dict(claims)


def _kid(token: str) -> str:
    import base64
    import json

    try:
        head = token.split(".")[0]
        return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))).get("kid", ""))
    except (ValueError, IndexError, AttributeError):
        return ""


def _ask_consent(args: dict, client_name: str, scopes: list[str]) -> Response:
    pending = dict(session.get("consent", {}))
    while len(pending) >= MAX_PENDING_REQUESTS:
        pending.pop(next(iter(pending)))
    tx = secrets.token_urlsafe(12)
    pending[tx] = {"args": args, "client_name": client_name, "scopes": scopes, "created": time.time()}
    session["consent"] = pending
    return redirect(url_for("oauth.consent_form", tx=tx))


def _consent_just_given(tx: str) -> bool:
    if not tx:
        return False
    pending = dict(session.get("consent", {}))
    entry = pending.pop(tx, None)
    session["consent"] = pending
    return bool(entry and entry.get("given"))


SCOPE_TEXT = {
    "openid": "Confirm who you are",
    "profile": "Your name and User ID",
    "email": "Your email address",
    "phone": "Your phone number",
    "offline_access": "Stay connected while you are signed in",
    "practice": "Your practice and your roles in it",
}


@bp.get("/consent")
def consent_form() -> Response | str | tuple[str, int]:
    entry = session.get("consent", {}).get(request.args.get("tx", ""))
    if not entry or not session.get("auth"):
        return render_template("expired.html"), 400
    return render_template(
        "consent.html",
        tx=request.args["tx"],
        client_name=entry["client_name"],
        scopes=[(scope, SCOPE_TEXT.get(scope, scope)) for scope in entry["scopes"]],
    )


@bp.post("/consent")
def consent_submit() -> Response | tuple[str, int]:
    from services.common.web import check_csrf

    check_csrf()
    tx = request.form.get("tx", "")
    pending = dict(session.get("consent", {}))
    entry = pending.get(tx)
    auth = session.get("auth")
    if not entry or not auth:
        return render_template("expired.html"), 400
    args = entry["args"]
    if request.form.get("decision") != "allow":
        pending.pop(tx, None)
        session["consent"] = pending
        return _redirect_error(args["redirect_uri"], "access_denied", args.get("state"), "the user declined")
    with transaction(container().db) as db:
        consents.grant(db, auth["user_pk"], args["client_id"], set(entry["scopes"]))
    pending[tx] = {**entry, "given": True}
    session["consent"] = pending
    return redirect(url_for("oauth.authorize") + "?" + urlencode({**args, "consent_tx": tx}))


def _bearer_error(status: int, error: str, description: str) -> Response:
    """RFC 6750 §3: the error in WWW-Authenticate, and a JSON body for humans."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    header = f'Bearer realm="{container().settings.issuer}"'
    if error:
        header += f', error="{error}", error_description="{description}"'
    response.headers["WWW-Authenticate"] = header
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """UserInfo (OIDC Core §5.3): the bearer token in the header, or in a form body (RFC 6750 §2.2)."""
    header = request.headers.get("Authorization", "")
    form_token = request.form.get("access_token") if request.method == "POST" else None
    if header and form_token:
        return _bearer_error(400, "invalid_request", "send the token once")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _bearer_error(401, "invalid_token", "expected a Bearer token")
        token = token.strip()
    elif form_token:
        token = form_token
    else:
        response = _bearer_error(401, "", "")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{container().settings.issuer}"'
        return response
    from services.auth.tokens import TokenInvalid

    c = container()
    try:
        claims = c.access_tokens.verify(token, None)
    except TokenInvalid:
        return _bearer_error(401, "invalid_token", "the access token is not valid")
    if not claims.sid or c.revocation.check(jti=claims.jti, sid=claims.sid, user_pk=claims.sub) is not None:
        return _bearer_error(401, "invalid_token", "the access token is not active")
    if "openid" not in claims.scope.split():
        return _bearer_error(403, "insufficient_scope", "the token lacks the openid scope")
    principal = load_principal(c, claims.sub, claims.sid)
    if principal is None:
        return _bearer_error(401, "invalid_token", "the access token is not active")
    from services.auth.oauth.server import user_claims

    response = jsonify(user_claims(principal, claims.scope))
    response.headers["Cache-Control"] = "no-store"
    return response


def _authenticated_client():  # type: ignore[no-untyped-def]
    oauth_request = server().create_oauth2_request(None)
    return server().authenticate_client(
        oauth_request, ["client_secret_basic", "client_secret_post"], "introspection"
    )


def _client_auth_error(error: OAuth2Error) -> Response:
    status, body, headers = error(None)
    response = Response(body if isinstance(body, str) else __import__("json").dumps(body), status=status)
    for name, value in headers:
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/introspect")
def introspect() -> Response:
    from services.auth.oauth.introspection import introspect as do_introspect

    try:
        _authenticated_client()
    except OAuth2Error as error:
        return _client_auth_error(error)
    if not request.form.get("token"):
        return _json_error(400, "invalid_request", "token is required")
    body = do_introspect(container(), request.form["token"], request.form.get("token_type_hint"))
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/revoke")
def revoke() -> Response:
    from services.auth.oauth.introspection import revoke as do_revoke

    try:
        client = _authenticated_client()
    except OAuth2Error as error:
        return _client_auth_error(error)
    if not request.form.get("token"):
        return _json_error(400, "invalid_request", "token is required")
    do_revoke(container(), client.client_id, request.form["token"], request.form.get("token_type_hint"))
    response = Response("", status=200)
    response.headers["Cache-Control"] = "no-store"
    return response
