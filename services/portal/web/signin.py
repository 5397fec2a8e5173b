"""Signing in through auth (OIDC authorization code + PKCE), staying signed in, signing out.

Every page but the few public ones needs a signed-in session: :func:`require_sign_in`
runs before each request, checks the session's access token with auth (through
the token verifier) and refreshes it shortly before it expires. Anything it
cannot vouch for ends in a redirect to sign in again; anything it cannot decide
(auth or Redis out of reach) ends in a 503 page, never in data.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.jose.errors import JoseError
from flask import Blueprint, Response, g, redirect, request, url_for

from services.common.token_client import TokenInfo, TokenServiceUnavailable
from services.common.web import check_csrf
from services.portal.tokens import RefreshBusy, SessionTokens, needs_refresh
from services.portal.web import pages
from services.portal.web.context import Portal, current_session, portal

log = logging.getLogger(__name__)

bp = Blueprint("signin", __name__)

# Endpoints anyone may reach; every other endpoint needs a signed-in session (deny by default).
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "healthz",
        "readyz",
        "signin.login",
        "signin.callback",
        "signin.logout",
        "signin.signed_out",
        "apidoc.openapi",
        "status.index",
        "status.as_json",
        "support.contact",
    }
)
# Blueprints that authenticate each request themselves (the API: bearer tokens, never cookies).
SELF_AUTHENTICATING = frozenset({"api"})
# Pending sign-ins kept per browser session (several tabs may start one); older ones are dropped.
MAX_PENDING_SIGN_INS = 4
_STATE_PREFIX = "_state_auth_"


def safe_next(value: object) -> str:
    """``value`` if it is a path on this site, else ``/``: no open redirect.

    Accepts only ``/something`` — not ``//host``, not ``/\\host`` (browsers
    treat a backslash as a slash), no scheme or host, no control characters.
    """
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return "/"
    if value.startswith(("//", "/\\")) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


class SignInInvalid(Exception):
    """The session's sign-in can no longer be trusted; sign in again."""


class RefreshUnreachable(Exception):
    """Auth's token endpoint could not be reached to refresh."""


def _requested_path() -> str:
    if request.method not in {"GET", "HEAD"}:
        return "/"
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def _to_sign_in(*, reauth: bool) -> Response:
    params = {"next": _requested_path()}
    if reauth:
        params["reauth"] = "1"
    return redirect(url_for("signin.login", **params))


def _end_session(p: Portal) -> None:
    server_session = current_session()
    signed_in = server_session.get("signed_in")
    if isinstance(signed_in, dict) and signed_in.get("ref"):
        p.token_store.delete(signed_in["ref"])
    server_session.destroy()


def require_sign_in() -> Response | None:
    """Before every request: let public endpoints through, check everyone else.

    On success ``g.user`` holds the validated :class:`TokenInfo` and
    ``g.signed_in`` what the session remembers of the sign-in.
    """
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if request.blueprint in SELF_AUTHENTICATING:
        return None
    p = portal()
    server_session = current_session()
    signed_in = server_session.get("signed_in")
    if not isinstance(signed_in, dict):
        # A session that timed out forces a fresh sign-in at auth too (prompt=login).
        return _to_sign_in(reauth=server_session.expired)
    try:
        info = _validated(p, signed_in)
    except SignInInvalid as exc:
        log.info("sign-in no longer valid", extra={"reason": str(exc)})
        _end_session(p)
        return _to_sign_in(reauth=str(exc) == "TOKENS_GONE")
    g.user = info
    g.signed_in = signed_in
    return None


def _validated(p: Portal, signed_in: dict[str, Any]) -> TokenInfo:
    ttl = p.session_ttl_s(current_session())
    tokens = p.token_store.load(signed_in["ref"], ttl)
    if tokens is None:
        raise SignInInvalid("TOKENS_GONE")
    info = p.verifier.verify(tokens.access_token)
    if needs_refresh(info, p.clock()) and tokens.refresh_token:
        try:
            tokens = _refreshed(p, signed_in["ref"], tokens, ttl)
            info = p.verifier.verify(tokens.access_token)
        except (RefreshBusy, RefreshUnreachable) as exc:
            # The old token may still have seconds to live; if not, we cannot decide.
            if not info.active:
                raise TokenServiceUnavailable(f"refresh failed: {type(exc).__name__}") from exc
            log.warning("token refresh postponed", extra={"reason": type(exc).__name__})
    if not info.active:
        raise SignInInvalid(info.reason or "INACTIVE")
    if info.sub != signed_in.get("sub"):
        raise SignInInvalid("SUBJECT_CHANGED")
    return info


def _refreshed(p: Portal, ref: str, seen: SessionTokens, ttl: int) -> SessionTokens:
    """Refresh under the session's lock; if another request already did, use its tokens."""
    with p.token_store.refresh_lock(ref):
        current = p.token_store.load(ref, ttl)
        if current is None:
            raise SignInInvalid("TOKENS_GONE")
        if current.access_token != seen.access_token:
            return current
        try:
            response = p.oidc.fetch_access_token(
                grant_type="refresh_token", refresh_token=current.refresh_token
            )
            fresh = SessionTokens.from_token_response(response, previous=current)
        except OAuthError as exc:
            raise SignInInvalid(f"REFRESH_REFUSED:{exc.error}") from exc
        except ValueError as exc:  # includes a JSON body that was not one
            raise SignInInvalid("REFRESH_MALFORMED") from exc
        except requests.RequestException as exc:
            raise RefreshUnreachable from exc
        p.token_store.replace(ref, fresh, ttl)
        log.info("access token refreshed")
        return fresh


class DiscoveryError(Exception):
    """Auth's discovery document could not be loaded or does not describe our issuer."""


def _metadata(p: Portal) -> dict[str, Any]:
    try:
        metadata: dict[str, Any] = p.oidc.load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"discovery failed: {type(exc).__name__}") from exc
    # OIDC Discovery 1.0 §4.3: the issuer in the document must be the one we asked.
    if metadata.get("issuer") != p.settings.auth_issuer:
        raise DiscoveryError(
            f"discovery issuer {metadata.get('issuer')!r} is not AUTH_ISSUER {p.settings.auth_issuer!r}"
        )
    return metadata


def _forget_old_sign_ins() -> None:
    server_session = current_session()
    pending = [key for key in server_session if key.startswith(_STATE_PREFIX)]
    for key in pending[: max(0, len(pending) - (MAX_PENDING_SIGN_INS - 1))]:
        server_session.pop(key, None)


@bp.get("/login")
def login() -> Response:
    """Send the browser to auth's authorization endpoint (PKCE S256, state, nonce)."""
    p = portal()
    next_path = safe_next(request.args.get("next"))
    # Step-up (RFC 9470): a signed-in user is sent to auth again, which must ask afresh.
    max_age = request.args.get("max_age", "")
    step_up = max_age.isdigit() and len(max_age) <= 5
    if isinstance(current_session().get("signed_in"), dict) and not step_up:
        return redirect(next_path)
    try:
        _metadata(p)
    except DiscoveryError as exc:
        log.error("cannot start sign-in", extra={"reason": str(exc)})
        return pages.unavailable()
    extra = {"prompt": "login"} if request.args.get("reauth") == "1" or step_up else {}
    if step_up:
        extra["max_age"] = str(int(max_age))
        signed_in = current_session().get("signed_in")
        if isinstance(signed_in, dict) and signed_in.get("user_id"):
            # Auth fills in the User ID and says it is asking the same person again.
            extra["login_hint"] = str(signed_in["user_id"])
    authorization = p.oidc.create_authorization_url(redirect_uri=p.settings.redirect_uri, **extra)
    _forget_old_sign_ins()
    # authlib keeps state, nonce and the PKCE verifier in the (server-side) session; `next` rides along.
    p.oidc.save_authorize_data(redirect_uri=p.settings.redirect_uri, next=next_path, **authorization)
    return redirect(authorization["url"])


def _sign_in_failed() -> Response:
    return pages.message(
        400,
        "Sign-in did not complete",
        "Sign-in did not complete — it may have been cancelled or taken too long. Please start again.",
        link=url_for("signin.login"),
        link_text="Start again",
    )


@bp.get("/auth/callback")
def callback() -> Response:
    """Exchange the code, check what came back, and start a fresh signed-in session."""
    p = portal()
    server_session = current_session()
    state = request.args.get("state", "")
    state_data = p.oidc.framework.get_state_data(server_session, state) if state else None
    if not state_data or request.args.get("error") or not request.args.get("code"):
        if state_data:
            p.oidc.framework.clear_state_data(server_session, state)
        log.info(
            "sign-in did not complete",
            extra={"error": request.args.get("error", "")[:64], "known_state": bool(state_data)},
        )
        return _sign_in_failed()
    next_path = safe_next(state_data.get("next"))
    try:
        # Checks state, sends the PKCE verifier, validates the ID token (signature, iss, aud, nonce).
        response = p.oidc.authorize_access_token()
        tokens = SessionTokens.from_token_response(response)
    except (OAuthError, JoseError, ValueError) as exc:
        log.info("sign-in refused", extra={"error": getattr(exc, "error", type(exc).__name__)})
        return _sign_in_failed()
    except requests.RequestException as exc:
        log.error("auth unreachable at callback", extra={"reason": type(exc).__name__})
        return pages.unavailable()
    userinfo = response.get("userinfo") or {}
    info = p.verifier.verify(tokens.access_token)
    if not info.active or not userinfo.get("sub") or info.sub != userinfo.get("sub"):
        log.warning("sign-in tokens rejected", extra={"reason": info.reason or "SUBJECT_MISMATCH"})
        return _sign_in_failed()

    previous = server_session.get("signed_in")
    if isinstance(previous, dict) and previous.get("ref"):
        p.token_store.delete(previous["ref"])
    # A new session id and a new CSRF token at sign-in, against session fixation.
    server_session.pop("csrf", None)
    server_session.regenerate()
    ref = p.token_store.create(tokens, p.session_ttl_s(server_session))
    server_session["signed_in"] = {
        "sub": info.sub,
        "sid": info.sid,
        "ref": ref,
        "name": str(userinfo.get("name") or userinfo.get("preferred_username") or ""),
        "user_id": str(userinfo.get("preferred_username") or "")[:64],  # the step-up's login_hint
        "email": str(userinfo.get("email") or "")[:254],  # support confirmations (issue 8)
        "at": int(p.clock()),
    }
    log.info("signed in", extra={"sub": info.sub, "practice_id": info.practice_id})
    return redirect(next_path)


@bp.post("/logout")
def logout() -> Response:
    """End the portal session, then ask auth to end its own (RP-initiated logout)."""
    p = portal()
    server_session = current_session()
    signed_in = server_session.get("signed_in")
    params = {
        "client_id": p.settings.client_id,
        "post_logout_redirect_uri": p.settings.post_logout_redirect_uri,
    }
    if isinstance(signed_in, dict):
        check_csrf()
        tokens = p.token_store.load(signed_in["ref"], 1)
        if tokens is not None and tokens.id_token:
            params["id_token_hint"] = tokens.id_token
        log.info("signed out", extra={"sub": signed_in.get("sub")})
    # Without a signed-in session there is nothing of ours to end and no CSRF token to
    # check; auth is still asked, without a hint, so it can confirm with the user.
    _end_session(p)
    try:
        end_session_endpoint = _metadata(p).get("end_session_endpoint")
    except DiscoveryError as exc:
        log.warning("cannot reach auth to sign out there", extra={"reason": str(exc)})
        end_session_endpoint = None
    if not end_session_endpoint:
        return redirect(url_for("signin.signed_out"))
    separator = "&" if "?" in end_session_endpoint else "?"
    return redirect(f"{end_session_endpoint}{separator}{urlencode(params)}")


@bp.get("/signed-out")
def signed_out() -> Response:
    return pages.message(
        200,
        "You have signed out",
        "You have signed out of Provider Center.",
        link=url_for("signin.login"),
        link_text="Sign in again",
    )
