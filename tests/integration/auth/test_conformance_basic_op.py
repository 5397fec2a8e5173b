"""The OpenID Foundation's Basic OP certification plan, module by module.

``oidcc-basic-certification-test-plan`` (openid-certification/conformance-suite,
static client, ``response_type=code``, ``client_secret_basic`` unless the
module says otherwise, and, like the suite, no PKCE except in the PKCE module) walked against auth's real app, Redis and database.
Each test is named after its module and makes the checks that module makes
(plus the plan's extra modules the issue names: redirect-URI query handling,
the missing redirect URI, and key rotation). The suite itself needs Java,
MongoDB and containers; these tests are its checks, run here.

| module | what the test checks |
|---|---|
| oidcc-server | discovery metadata is sane; JWKS keys have distinct `kid`s and no private parts; code flow with state + nonce; token response (Bearer, `expires_in`, refresh token, `Cache-Control: no-store`); ID token valid per OIDC Core §3.1.3.7 (iss, aud, exp, iat, auth_time, nonce, at_hash, ES256 signature by a JWKS `kid`); UserInfo answers with the same `sub` |
| oidcc-response-type-missing | no `response_type` → redirect with `invalid_request` and the state; no code |
| oidcc-idtoken-signature | ID token header is ES256 with a `kid` from JWKS; the signature verifies with JWKS; a tampered token does not |
| oidcc-idtoken-unsigned | `none` is never advertised nor issued; tokens with `alg: none` are refused at UserInfo and introspection |
| oidcc-userinfo-get | UserInfo by GET with the bearer header: JSON, `sub` equals the ID token's |
| oidcc-userinfo-post-header | UserInfo by POST with the bearer header |
| oidcc-userinfo-post-body | UserInfo by POST with `access_token` in the form body (RFC 6750 §2.2) |
| oidcc-ensure-request-without-nonce-succeeds-for-code-flow | no `nonce` → success, ID token without `nonce` |
| oidcc-scope-profile | `openid profile` → `name`, `preferred_username` at UserInfo |
| oidcc-scope-email | `openid email` → `email`, `email_verified` |
| oidcc-scope-address | not supported (the directory holds no postal addresses): `address` is not in `scopes_supported`, the request succeeds, the unknown scope is ignored (OIDC Core §5.4) and left out of the granted `scope`; no `address` claim. The suite skips the module when the scope is not advertised, and accepts a success without claims. |
| oidcc-scope-phone | not supported for the same reason (no phone numbers are held): treated as `address` |
| oidcc-scope-all | `openid profile email address phone` → success; profile and email claims; the unsupported two ignored |
| oidcc-ensure-other-scope-order-succeeds | `email openid` and `profile email openid` succeed |
| oidcc-display-page | `display=page` accepted |
| oidcc-display-popup | `display=popup` accepted |
| oidcc-prompt-login | with a session, `prompt=login` shows the sign-in page again; the new ID token's `auth_time` is later |
| oidcc-prompt-none-not-logged-in | no session + `prompt=none` → `login_required` by redirect, a 128-character state returned intact |
| oidcc-prompt-none-logged-in | session + `prompt=none` → a code without any page; same `sub` and `auth_time` |
| oidcc-max-age-1 | after more than a second, `max_age=1` forces a sign-in; `auth_time` present, later and recent |
| oidcc-max-age-10000 | `max_age=10000` reuses the session; `auth_time` present and unchanged |
| oidcc-ensure-request-with-unknown-parameter-succeeds | an unknown parameter is ignored |
| oidcc-id-token-hint | `prompt=none` + `id_token_hint` from the first sign-in → silent success, same `sub` and `auth_time`; a hint naming another user answers `login_required` |
| oidcc-login-hint | `login_hint` prefills the User ID on the sign-in page |
| oidcc-ui-locales | `ui_locales` accepted |
| oidcc-claims-locales | `claims_locales` accepted |
| oidcc-ensure-request-with-acr-values-succeeds | `acr_values` accepted; the ID token's `acr` is one of `acr_values_supported` |
| oidcc-codereuse | second use of a code → 400 JSON `invalid_grant` with a well-formed description and `no-store` |
| oidcc-codereuse-30seconds | reuse 30 s later (the code row is aged by 30 s instead of sleeping) → `invalid_grant`, and the first access and refresh tokens are inactive at UserInfo and introspection; an expired code is refused too |
| oidcc-ensure-registered-redirect-uri | an unregistered redirect URI → error page, no redirect |
| oidcc-ensure-post-request-succeeds | the authorization request sent by form POST succeeds |
| oidcc-server-client-secret-post | the oidcc-server flow with `client_secret_post` |
| oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported | `request_uri` → `request_uri_not_supported` (discovery says so) |
| oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported | `request` (alg none) → `request_not_supported` (discovery says so) |
| oidcc-claims-essential | the `claims` parameter (not supported, as discovery says) does not fail the request; `name` is not put in the ID token; `name` comes from the `profile` scope |
| oidcc-ensure-request-object-with-redirect-uri | a request object with the right redirect URI but an unregistered one outside → error page, never a redirect |
| oidcc-refresh-token | refresh works and rotates; the new access token works; replaying the used refresh token → `invalid_grant` and revokes the whole family; a refresh token is bound to its client (another client's attempt fails and does not burn it) |
| oidcc-ensure-request-with-valid-pkce-succeeds | S256 PKCE succeeds; a wrong or missing verifier, a verifier without a challenge, `plain` and a method-less challenge are refused |
| oidcc-redirect-uri-query-OK | a registered redirect URI with a query works; its query is kept |
| oidcc-redirect-uri-query-mismatch | a different query than registered → error page, no redirect |
| oidcc-redirect-uri-query-added | a query added to a registered URI without one → error page, no redirect |
| oidcc-ensure-redirect-uri-in-authorization-request | no `redirect_uri` → error page (no default is ever used) |
| oidcc-server-rotate-keys | `signing.rotate()` (what `providerctl auth keys rotate` runs): JWKS gains a new `kid` and keeps the old one; old ID and access tokens still verify and work; new tokens carry the new `kid` |

Deliberate choices these tests pin down:
- `address` and `phone` are not supported (no such data is held); unknown scopes are
  ignored, never refused (OIDC Core §5.4), and a grant never exceeds the client's registration.
- Request objects (`request`, `request_uri`) and the `claims` parameter are not supported,
  and discovery says so; the answers are the ones the suite accepts.
- PKCE is S256 only; public clients must use it, confidential clients may omit it (the
  suite's clients do; `nonce` protects them, RFC 9700 §2.1.1).
- Refresh tokens go to clients registered for the `refresh_token` grant, with or without
  `offline_access`: they end with the auth session, so they are never "offline".
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import BadSignatureError
from flask import Flask

from services.auth.bootstrap import Container
from services.auth.oauth.codes import code_hash
from services.auth.store.models import AuthorizationCode
from services.common.db import transaction
from tests.integration.auth.op_driver import OP, Tokens, b64url, jwt_parts, provider_app, query_of

pytestmark = pytest.mark.integration

# RFC 6749 §5.2: error_description is NQSCHAR only.
NQSCHAR = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]*$")


@pytest.fixture(scope="module")
def provider(databases, redis_url, tmp_path_factory) -> Iterator[tuple[Flask, Container]]:  # type: ignore[no-untyped-def]
    with provider_app(databases, redis_url, tmp_path_factory.mktemp("auth")) as app_and_container:
        yield app_and_container


@pytest.fixture
def op(provider) -> OP:  # type: ignore[no-untyped-def]
    """A fresh browser (no cookies) against the module's provider; like the
    suite's static client, confidential and without PKCE unless a module adds it."""
    return OP(*provider, pkce=False)


def _error_page_without_redirect(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    assert "redirect" in html.lower() or "return address" in html.lower()


def _wait_for_next_second(after: int) -> None:
    """auth_time has one-second resolution: let the clock pass ``after`` (at most ~1 s)."""
    deadline = time.time() + 3
    while time.time() <= after + 1.0 and time.time() < deadline:
        time.sleep(0.05)


# --- oidcc-server -------------------------------------------------------------------------------


def _check_server_configuration(op: OP) -> dict:
    meta = op.discovery()
    assert meta["issuer"] == op.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert meta[endpoint].startswith(op.issuer + "/"), endpoint
    assert "code" in meta["response_types_supported"]
    assert meta["subject_types_supported"] == ["public"]
    assert "openid" in meta["scopes_supported"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    return meta


def _check_jwks(jwks: dict) -> None:
    keys = jwks["keys"]
    assert keys
    kids = [key["kid"] for key in keys]
    assert len(set(kids)) == len(kids)
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["use"] == "sig" and key["alg"] == "ES256"
        assert "d" not in key  # no private part
        JsonWebKey.import_key(key)


def _basic_flow(op: OP, auth: str) -> None:
    meta = _check_server_configuration(op)
    assert auth in meta["token_endpoint_auth_methods_supported"]
    _check_jwks(op.jwks())
    rp = op.register()
    user = op.user()
    callback = op.login(rp, user)
    assert set(callback.params) == {"code", "state"}
    assert callback.params["state"] == callback.state
    tokens = op.exchange(rp, callback, auth=auth.removeprefix("client_secret_"))
    response = tokens.response
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert tokens.body["token_type"] == "Bearer"
    assert isinstance(tokens.body["expires_in"], int) and tokens.body["expires_in"] > 0
    assert tokens.body["refresh_token"]
    claims = op.validate_id_token(tokens, rp, nonce=callback.nonce)
    assert claims["sub"] == user.user_pk
    info = op.userinfo(tokens.access_token)
    assert info.status_code == 200
    assert info.get_json()["sub"] == claims["sub"]


def test_oidcc_server(op: OP) -> None:
    _basic_flow(op, "client_secret_basic")


def test_oidcc_server_client_secret_post(op: OP) -> None:
    _basic_flow(op, "client_secret_post")


def test_oidcc_response_type_missing(op: OP) -> None:
    rp = op.register()
    params, _ = op.auth_params(rp, response_type=None)
    response = op.authorize(params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    query = query_of(location)
    assert query["error"] in ("invalid_request", "unsupported_response_type")
    assert query["state"] == params["state"]
    assert "code" not in query
    assert NQSCHAR.match(query.get("error_description", ""))


# --- ID token signature -------------------------------------------------------------------------


def test_oidcc_idtoken_signature(op: OP) -> None:
    rp = op.register()
    _callback, tokens, _claims = op.full_login(rp, op.user())
    header, payload = jwt_parts(tokens.id_token)
    assert header["alg"] == "ES256"
    assert header["kid"] in [key["kid"] for key in op.jwks()["keys"]]
    key_set = JsonWebKey.import_key_set(op.jwks())
    JsonWebToken(["ES256"]).decode(tokens.id_token, key_set)  # verifies

    head, _body, sig = tokens.id_token.split(".")
    payload["sub"] = "someone-else"
    forged = f"{head}.{b64url(json.dumps(payload).encode())}.{sig}"
    with pytest.raises(BadSignatureError):
        JsonWebToken(["ES256"]).decode(forged, key_set)


def test_oidcc_idtoken_unsigned(op: OP) -> None:
    meta = op.discovery()
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    rp = op.register()
    _callback, tokens, _claims = op.full_login(rp, op.user())
    header, payload = jwt_parts(tokens.id_token)
    assert header["alg"] != "none" and tokens.id_token.split(".")[2]
    # A token made with alg "none" (from a real one) is never accepted.
    _h, at_payload = jwt_parts(tokens.access_token)
    unsigned = f"{b64url(json.dumps({'alg': 'none', 'typ': 'at+jwt'}).encode())}.{b64url(json.dumps(at_payload).encode())}."
    assert op.userinfo(unsigned).status_code == 401
    assert op.active(rp, unsigned) is False


# --- UserInfo -----------------------------------------------------------------------------------


def _userinfo(op: OP, how: str) -> None:
    rp = op.register()
    user = op.user()
    _callback, tokens, claims = op.full_login(rp, user, scope="openid profile email")
    response = op.userinfo(tokens.access_token, how)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["sub"] == claims["sub"] == user.user_pk
    assert body["email"] == user.email
    assert body["preferred_username"] == user.user_id


def test_oidcc_userinfo_get(op: OP) -> None:
    _userinfo(op, "get")


def test_oidcc_userinfo_post_header(op: OP) -> None:
    _userinfo(op, "post-header")


def test_oidcc_userinfo_post_body(op: OP) -> None:
    _userinfo(op, "post-body")


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(op: OP) -> None:
    rp = op.register()
    callback, tokens, claims = op.full_login(rp, op.user(), nonce=None)
    assert callback.nonce is None
    assert "nonce" not in claims


# --- scopes -------------------------------------------------------------------------------------


def _scope_flow(op: OP, scope: str) -> tuple[dict, dict, Tokens]:
    rp = op.register()
    user = op.user()
    _callback, tokens, claims = op.full_login(rp, user, scope=scope)
    info = op.userinfo(tokens.access_token)
    assert info.status_code == 200
    body = info.get_json()
    assert body["sub"] == claims["sub"]
    return body, {"user": user, "scope": tokens.body["scope"]}, tokens


def test_oidcc_scope_profile(op: OP) -> None:
    body, ctx, _ = _scope_flow(op, "openid profile")
    assert body["name"] == ctx["user"].name
    assert body["preferred_username"] == ctx["user"].user_id
    assert "email" not in body
    assert set(ctx["scope"].split()) == {"openid", "profile"}


def test_oidcc_scope_email(op: OP) -> None:
    body, ctx, _ = _scope_flow(op, "openid email")
    assert body["email"] == ctx["user"].email
    assert body["email_verified"] is True
    assert "name" not in body


def test_oidcc_scope_address(op: OP) -> None:
    # Deliberately unsupported: the directory holds no postal addresses.
    assert "address" not in op.discovery()["scopes_supported"]
    body, ctx, _ = _scope_flow(op, "openid address")
    assert "address" not in body
    assert ctx["scope"].split() == ["openid"]


def test_oidcc_scope_phone(op: OP) -> None:
    # Deliberately unsupported: the directory holds no phone numbers.
    assert "phone" not in op.discovery()["scopes_supported"]
    body, ctx, _ = _scope_flow(op, "openid phone")
    assert "phone_number" not in body
    assert ctx["scope"].split() == ["openid"]


def test_oidcc_scope_all(op: OP) -> None:
    body, ctx, _ = _scope_flow(op, "openid profile email address phone")
    user = ctx["user"]
    assert body["name"] == user.name and body["email"] == user.email
    assert "address" not in body and "phone_number" not in body
    assert set(ctx["scope"].split()) == {"openid", "profile", "email"}


def test_oidcc_ensure_other_scope_order_succeeds(op: OP) -> None:
    rp = op.register()
    user = op.user()
    for scope in ("email openid", "profile email openid"):
        browser = op.app.test_client()
        callback = op.login(rp, user, browser=browser, scope=scope)
        tokens = op.exchange(rp, callback)
        assert tokens.response.status_code == 200
        op.validate_id_token(tokens, rp, nonce=callback.nonce)
        info = op.userinfo(tokens.access_token).get_json()
        assert info["email"] == user.email


# --- request parameters that must simply be accepted ------------------------------------------------


def test_oidcc_display_page(op: OP) -> None:
    op.full_login(op.register(), op.user(), display="page")


def test_oidcc_display_popup(op: OP) -> None:
    op.full_login(op.register(), op.user(), display="popup")


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(op: OP) -> None:
    op.full_login(op.register(), op.user(), extra_param_for_test="is-ignored")


def test_oidcc_ui_locales(op: OP) -> None:
    op.full_login(op.register(), op.user(), ui_locales="se")


def test_oidcc_claims_locales(op: OP) -> None:
    op.full_login(op.register(), op.user(), claims_locales="se")


def test_oidcc_ensure_request_with_acr_values_succeeds(op: OP) -> None:
    supported = op.discovery()["acr_values_supported"]
    _callback, _tokens, claims = op.full_login(op.register(), op.user(), acr_values=" ".join(supported))
    assert claims["acr"] in supported


def test_oidcc_login_hint(op: OP) -> None:
    rp = op.register()
    user = op.user()
    params, _ = op.auth_params(rp, login_hint=user.user_id)
    response = op.authorize(params)
    assert response.status_code == 302
    html = op.sign_in_page(response.headers["Location"])
    assert f'name="user_id" value="{user.user_id}"' in html
    assert "<h1>Sign in</h1>" in html  # a hint alone is not a step-up


@pytest.mark.parametrize("asks_again", [{"prompt": "login"}, {"max_age": "300"}])
def test_a_step_up_with_the_users_hint_says_it_asks_again(op: OP, asks_again: dict[str, str]) -> None:
    """What a relying party's step-up (RFC 9470: prompt=login or max_age, with login_hint) looks
    like: the same form, the User ID filled in, and a heading that says why."""
    rp = op.register()
    user = op.user()
    params, _ = op.auth_params(rp, login_hint=user.user_id, **asks_again)
    html = op.sign_in_page(op.authorize(params).headers["Location"])
    assert "<h1>Sign in again</h1>" in html and "confirm it is you" in html
    assert f'name="user_id" value="{user.user_id}"' in html and 'name="password"' in html


# --- prompt, max_age, id_token_hint --------------------------------------------------------------


def test_oidcc_prompt_login(op: OP) -> None:
    rp = op.register()
    user = op.user()
    _cb, _tokens, first = op.full_login(rp, user)
    _wait_for_next_second(first["auth_time"])
    params, verifier = op.auth_params(rp, prompt="login")
    response = op.authorize(params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert urlsplit(location).path == "/signin", location  # asked to sign in again
    response = op.follow_until_client(op.sign_in(location, user), rp.redirect_uri)
    callback = op.callback(response, params, verifier)
    tokens = op.exchange(rp, callback)
    second = op.validate_id_token(tokens, rp, nonce=callback.nonce)
    assert second["sub"] == first["sub"]
    assert second["auth_time"] > first["auth_time"]


def test_oidcc_prompt_none_not_logged_in(op: OP) -> None:
    rp = op.register()
    state = "s" * 64 + "-" + "x" * 63
    assert len(state) == 128
    params, _ = op.auth_params(rp, prompt="none", state=state)
    response = op.authorize(params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(rp.redirect_uri + "?")
    query = query_of(location)
    assert query["error"] == "login_required"
    assert query["state"] == state
    assert "code" not in query


def test_oidcc_prompt_none_logged_in(op: OP) -> None:
    rp = op.register()
    user = op.user()
    _cb, _tokens, first = op.full_login(rp, user)
    params, verifier = op.auth_params(rp, prompt="none")
    response = op.authorize(params)
    assert response.status_code == 302
    callback = op.callback(response, params, verifier)  # straight back to the client: no page
    assert "code" in callback.params, callback.location
    tokens = op.exchange(rp, callback)
    second = op.validate_id_token(tokens, rp, nonce=callback.nonce)
    assert second["sub"] == first["sub"]
    assert second["auth_time"] == first["auth_time"]


def test_oidcc_max_age_1(op: OP) -> None:
    rp = op.register()
    user = op.user()
    _cb, _tokens, first = op.full_login(rp, user)
    _wait_for_next_second(first["auth_time"])
    params, verifier = op.auth_params(rp, max_age="1")
    response = op.authorize(params)
    location = response.headers["Location"]
    assert urlsplit(location).path == "/signin", location
    response = op.follow_until_client(op.sign_in(location, user), rp.redirect_uri)
    callback = op.callback(response, params, verifier)
    tokens = op.exchange(rp, callback)
    second = op.validate_id_token(tokens, rp, nonce=callback.nonce)
    assert second["auth_time"] > first["auth_time"]
    assert time.time() - second["auth_time"] < 60


def test_oidcc_max_age_10000(op: OP) -> None:
    rp = op.register()
    user = op.user()
    _cb, _tokens, first = op.full_login(rp, user)
    params, verifier = op.auth_params(rp, max_age="10000")
    response = op.authorize(params)
    callback = op.callback(response, params, verifier)  # no sign-in page
    tokens = op.exchange(rp, callback)
    second = op.validate_id_token(tokens, rp, nonce=callback.nonce)
    assert second["auth_time"] == first["auth_time"]


def test_oidcc_id_token_hint(op: OP) -> None:
    rp = op.register()
    user = op.user()
    _cb, first_tokens, first = op.full_login(rp, user)
    params, verifier = op.auth_params(rp, prompt="none", id_token_hint=first_tokens.id_token)
    response = op.authorize(params)
    callback = op.callback(response, params, verifier)
    assert "code" in callback.params, callback.location
    tokens = op.exchange(rp, callback)
    second = op.validate_id_token(tokens, rp, nonce=callback.nonce)
    assert second["sub"] == first["sub"]
    assert second["auth_time"] == first["auth_time"]

    # A hint naming someone other than the signed-in user cannot be answered silently.
    _cb, other_tokens, _ = op.full_login(rp, op.user(), browser=op.app.test_client())
    params, _ = op.auth_params(rp, prompt="none", id_token_hint=other_tokens.id_token)
    response = op.authorize(params)
    query = query_of(response.headers["Location"])
    assert query["error"] == "login_required" and "code" not in query


# --- authorization codes ------------------------------------------------------------------------


def _check_token_error(response, error: str, status: int = 400) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error
    assert NQSCHAR.match(body.get("error_description", ""))
    assert "error_uri" not in body or NQSCHAR.match(body["error_uri"])


def test_oidcc_codereuse(op: OP) -> None:
    rp = op.register()
    callback, tokens, _claims = op.full_login(rp, op.user())
    again = op.exchange(rp, callback)
    _check_token_error(again.response, "invalid_grant")


def test_oidcc_codereuse_30seconds(op: OP) -> None:
    rp = op.register()
    callback, tokens, _claims = op.full_login(rp, op.user())
    assert op.userinfo(tokens.access_token).status_code == 200
    # 30 seconds pass: age the code's row instead of sleeping (it still has 30 s to live).
    with transaction(op.c.db) as db:
        row = db.get(AuthorizationCode, code_hash(callback.code))
        row.used_at = row.used_at - timedelta(seconds=30)
        row.expires_at = row.expires_at - timedelta(seconds=30)
    again = op.exchange(rp, callback)
    _check_token_error(again.response, "invalid_grant")
    # RFC 6749 §4.1.2: what the first use issued is revoked.
    assert op.userinfo(tokens.access_token).status_code == 401
    assert op.active(rp, tokens.access_token) is False
    assert op.active(rp, tokens.refresh_token, "refresh_token") is False
    assert op.refresh(rp, tokens.refresh_token).response.status_code == 400

    # A code used for the first time after its 60 seconds is refused as well.
    late = op.login(rp, op.user(), browser=op.app.test_client())
    with transaction(op.c.db) as db:
        row = db.get(AuthorizationCode, code_hash(late.code))
        row.expires_at = row.expires_at - timedelta(seconds=61)
    _check_token_error(op.exchange(rp, late).response, "invalid_grant")


def test_oidcc_ensure_request_with_valid_pkce_succeeds(op: OP) -> None:
    op.pkce = True
    rp = op.register()
    user = op.user()
    callback, _tokens, _claims = op.full_login(rp, user)
    assert callback.verifier
    # A verifier that does not match the challenge is refused...
    callback = op.login(rp, user)
    callback.verifier = "w" * 50
    _check_token_error(op.exchange(rp, callback).response, "invalid_grant")
    # ...and so is a code sent without its verifier (no downgrade).
    callback = op.login(rp, user)
    callback.verifier = ""
    _check_token_error(op.exchange(rp, callback).response, "invalid_request")
    # Only S256: "plain", or a challenge without a method (which would mean plain), are refused.
    for extra in ({"code_challenge_method": "plain"}, {"code_challenge_method": None}):
        params, _ = op.auth_params(rp, **extra)
        query = query_of(op.authorize(params).headers["Location"])
        assert query["error"] == "invalid_request" and "code" not in query
    # A verifier sent for a code that had no challenge is refused too (RFC 9700 §4.8.2).
    op.pkce = False
    callback = op.login(rp, user)
    callback.verifier = "v" * 43
    _check_token_error(op.exchange(rp, callback).response, "invalid_grant")


# --- redirect URIs ------------------------------------------------------------------------------


def test_oidcc_ensure_registered_redirect_uri(op: OP) -> None:
    rp = op.register()
    params, _ = op.auth_params(rp, redirect_uri=f"http://127.0.0.1:9/{rp.client_id}/not-registered")
    _error_page_without_redirect(op.authorize(params))


def test_oidcc_ensure_redirect_uri_in_authorization_request(op: OP) -> None:
    rp = op.register()
    params, _ = op.auth_params(rp, redirect_uri=None)
    _error_page_without_redirect(op.authorize(params))


def test_oidcc_redirect_uri_query_ok(op: OP) -> None:
    rp = op.register(redirect_uris=["http://127.0.0.1:9/rp-query/cb?foo=bar&x=1"])
    callback, _tokens, _claims = op.full_login(rp, op.user())
    assert callback.location.startswith("http://127.0.0.1:9/rp-query/cb?")
    assert callback.params["foo"] == "bar" and callback.params["x"] == "1"


def test_oidcc_redirect_uri_query_mismatch(op: OP) -> None:
    rp = op.register(redirect_uris=["http://127.0.0.1:9/rp-query/cb?foo=bar"])
    params, _ = op.auth_params(rp, redirect_uri="http://127.0.0.1:9/rp-query/cb?foo=baz")
    _error_page_without_redirect(op.authorize(params))


def test_oidcc_redirect_uri_query_added(op: OP) -> None:
    rp = op.register()
    params, _ = op.auth_params(rp, redirect_uri=rp.redirect_uri + "?foo=bar")
    _error_page_without_redirect(op.authorize(params))


def test_oidcc_ensure_post_request_succeeds(op: OP) -> None:
    rp = op.register()
    callback = op.login(rp, op.user(), method="POST")
    assert callback.params["state"] == callback.state
    tokens = op.exchange(rp, callback)
    assert tokens.response.status_code == 200
    op.validate_id_token(tokens, rp, nonce=callback.nonce)


# --- request objects --------------------------------------------------------------------------


def _unsigned_request_object(claims: dict) -> str:
    return f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(claims).encode())}."


def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(op: OP) -> None:
    assert op.discovery()["request_uri_parameter_supported"] is False
    rp = op.register()
    params, _ = op.auth_params(rp, state=None)
    params["request_uri"] = "https://rp.example/request.jwt"
    response = op.authorize(params)
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(rp.redirect_uri)
    assert query["error"] == "request_uri_not_supported" and "code" not in query


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(op: OP) -> None:
    assert op.discovery()["request_parameter_supported"] is False
    rp = op.register()
    inner, _ = op.auth_params(rp)
    request_object = _unsigned_request_object({**inner, "iss": rp.client_id, "aud": op.issuer})
    outer = {key: inner[key] for key in ("response_type", "client_id", "scope", "redirect_uri")}
    response = op.authorize({**outer, "request": request_object})
    assert response.status_code == 302
    assert response.headers["Location"].startswith(rp.redirect_uri)
    query = query_of(response.headers["Location"])
    assert query["error"] == "request_not_supported" and "code" not in query


def test_oidcc_ensure_request_object_with_redirect_uri(op: OP) -> None:
    rp = op.register()
    inner, _ = op.auth_params(rp)
    request_object = _unsigned_request_object({**inner, "iss": rp.client_id, "aud": op.issuer})
    outer = {key: inner[key] for key in ("response_type", "client_id", "scope")}
    outer["redirect_uri"] = f"http://127.0.0.1:9/{rp.client_id}/invalid"
    _error_page_without_redirect(op.authorize({**outer, "request": request_object}))


def test_oidcc_claims_essential(op: OP) -> None:
    assert op.discovery()["claims_parameter_supported"] is False
    rp = op.register()
    user = op.user()
    claims_request = json.dumps({"userinfo": {"name": {"essential": True}}})
    _cb, tokens, id_claims = op.full_login(rp, user, claims=claims_request)
    assert "name" not in id_claims
    info = op.userinfo(tokens.access_token).get_json()
    assert info["sub"] == user.user_pk
    # name is released with the profile scope.
    browser = op.app.test_client()
    callback = op.login(rp, user, browser=browser, scope="openid profile", claims=claims_request)
    tokens = op.exchange(rp, callback)
    assert op.userinfo(tokens.access_token).get_json()["name"] == user.name


# --- refresh tokens -------------------------------------------------------------------------------


def test_oidcc_refresh_token(op: OP) -> None:
    rp = op.register()
    rp2 = op.register()
    user = op.user()
    _cb, tokens, first = op.full_login(rp, user, scope="openid profile offline_access")
    refresh = tokens.refresh_token
    assert re.fullmatch(r"[\x20-\x7E]+", refresh)  # RFC 6749 A.17

    # Another client cannot use it, and its attempt does not spend it.
    stolen = op.refresh(rp2, refresh)
    _check_token_error(stolen.response, "invalid_grant")

    refreshed = op.refresh(rp, refresh)
    assert refreshed.response.status_code == 200, refreshed.response.get_data(as_text=True)
    assert refreshed.response.headers["Cache-Control"] == "no-store"
    assert refreshed.refresh_token != refresh  # rotated
    assert refreshed.access_token != tokens.access_token
    assert set(refreshed.body["scope"].split()) == {"openid", "profile", "offline_access"}
    if "id_token" in refreshed.body:  # OIDC Core §12.2
        _h, again = jwt_parts(refreshed.id_token)
        assert again["sub"] == first["sub"] and again["iss"] == first["iss"]
        assert again["auth_time"] == first["auth_time"]
    info = op.userinfo(refreshed.access_token)
    assert info.status_code == 200 and info.get_json()["sub"] == user.user_pk

    # Replaying the used one: refused, and the whole family is revoked.
    replay = op.refresh(rp, refresh)
    _check_token_error(replay.response, "invalid_grant")
    assert op.active(rp, refreshed.refresh_token, "refresh_token") is False
    assert op.userinfo(refreshed.access_token).status_code == 401
    assert op.refresh(rp, refreshed.refresh_token).response.status_code == 400


# --- keys -------------------------------------------------------------------------------------------


def test_oidcc_server_rotate_keys(op: OP) -> None:
    rp = op.register()
    user = op.user()
    before = op.jwks()
    _check_jwks(before)
    _cb, old_tokens, _claims = op.full_login(rp, user)
    old_kid = jwt_parts(old_tokens.id_token)[0]["kid"]

    new_kid = op.c.signing.rotate()  # what `providerctl auth keys rotate` does

    after = op.jwks()
    _check_jwks(after)
    kids = {key["kid"] for key in after["keys"]}
    assert new_kid in kids and new_kid not in {key["kid"] for key in before["keys"]}
    assert old_kid in kids  # the old key stays until its tokens expire
    # Old tokens still verify with the published keys, and still work.
    op.validate_id_token(old_tokens, rp, nonce=_cb.nonce, jwks=after)
    assert op.userinfo(old_tokens.access_token).status_code == 200
    assert op.active(rp, old_tokens.access_token)
    # New tokens are signed with the new key.
    _cb2, new_tokens, _ = op.full_login(rp, user)
    assert jwt_parts(new_tokens.id_token)[0]["kid"] == new_kid
    assert jwt_parts(new_tokens.access_token)[0]["kid"] == new_kid
    op.validate_id_token(new_tokens, rp, nonce=_cb2.nonce, jwks=after)
