"""auth's OAuth endpoints beyond the Basic OP plan, through the real app, Redis and database:
introspection (RFC 7662), revocation (RFC 7009), RP-initiated logout, consent for
third-party clients, the client_credentials grant, token endpoint errors
(RFC 6749 §5.2), malformed input at every endpoint, and suspended users.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest
from authlib.jose import JsonWebToken
from flask import Flask

from services.auth import accounts, clients, consents
from services.auth.bootstrap import Container
from services.common.db import transaction
from tests.integration.auth.op_driver import (
    OP,
    RP,
    b64url,
    csrf,
    hidden_tx,
    jwt_parts,
    provider_app,
    query_of,
)

pytestmark = pytest.mark.integration

NQSCHAR = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]*$")
API = "https://api.providercenter.example/ledger"


@pytest.fixture(scope="module")
def provider(databases, redis_url, tmp_path_factory) -> Iterator[tuple[Flask, Container]]:  # type: ignore[no-untyped-def]
    with provider_app(databases, redis_url, tmp_path_factory.mktemp("auth")) as app_and_container:
        yield app_and_container


@pytest.fixture
def op(provider) -> OP:  # type: ignore[no-untyped-def]
    return OP(*provider)


def oauth_error(response, error: str, status: int = 400) -> dict:  # type: ignore[no-untyped-def]
    """An RFC 6749 §5.2 error: the status, a JSON body naming the error, never cached."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json", response.mimetype
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error, body
    assert NQSCHAR.match(body.get("error_description", ""))
    return dict(body)


def service_client(op: OP, **kwargs) -> RP:  # type: ignore[no-untyped-def]
    return op.register(
        grant_types=["client_credentials"],
        scopes=kwargs.pop("scopes", ["ledger.read", "ledger.write"]),
        audience=kwargs.pop("audience", API),
        post_logout_redirect_uris=[],
        **kwargs,
    )


# --- introspection (RFC 7662) -------------------------------------------------------------------


def test_introspection_of_active_access_and_refresh_tokens(op: OP) -> None:
    rp = op.register()
    resource = op.register()  # a resource server introspects tokens issued to others
    user = op.user(roles=["manager"])
    _cb, tokens, id_claims = op.full_login(rp, user, scope="openid profile")

    response = op.introspect(resource, tokens.access_token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["active"] is True
    assert body["sub"] == user.user_pk and body["username"] == user.user_id
    assert body["client_id"] == rp.client_id and body["aud"] == [rp.client_id]
    assert body["scope"] == "openid profile" and body["token_type"] == "Bearer"
    assert body["iss"] == op.issuer and body["exp"] > time.time() >= body["iat"] - 5
    assert body["sid"] == id_claims["sid"] and body["roles"] == ["manager"]
    assert body["practice_id"] == user.practice_id and body["amr"] == ["pwd", "otp"]

    for hint in (None, "refresh_token", "access_token"):
        refresh = op.introspect(resource, tokens.refresh_token, hint).get_json()
        assert refresh["active"] is True, hint
        assert refresh["token_type"] == "refresh_token" and refresh["client_id"] == rp.client_id
        assert refresh["sub"] == user.user_pk and refresh["exp"] > time.time()
    # A wrong hint must not hide an access token either (RFC 7662 §2.1).
    assert op.active(resource, tokens.access_token, "refresh_token") is True
    # client_secret_post works as well.
    assert op.introspect(resource, tokens.access_token, auth="post").get_json()["active"] is True


def test_introspection_of_inactive_tokens(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    expired, _ = op.c.access_tokens.issue(
        sub="x", client_id=rp.client_id, audience=[rp.client_id], scope="openid", now=int(time.time()) - 3600
    )
    head, payload, sig = tokens.access_token.split(".")
    _h, claims = jwt_parts(tokens.access_token)
    tampered = f"{head}.{b64url(json.dumps({**claims, 'scope': 'openid admin'}).encode())}.{sig}"
    for token in (expired, tampered, "garbage", "a.b.c", "x" * 9000, tokens.refresh_token + "x"):
        response = op.introspect(rp, token)
        assert response.status_code == 200
        assert response.get_json() == {"active": False}  # nothing else is told

    # Revoked: by revocation, and both kinds.
    assert op.revoke(rp, tokens.refresh_token).status_code == 200
    assert op.introspect(rp, tokens.refresh_token).get_json() == {"active": False}
    assert op.introspect(rp, tokens.access_token).get_json() == {"active": False}


def test_introspection_requires_client_authentication(op: OP) -> None:
    rp = op.register()
    public = op.register(public=True)
    _cb, tokens, _ = op.full_login(rp, op.user())
    cases = [
        op.browser.post("/introspect", data={"token": tokens.access_token}),
        op.browser.post("/introspect", data={"token": tokens.access_token}, auth=(rp.client_id, "wrong" * 8)),
        op.browser.post(
            "/introspect", data={"token": tokens.access_token}, auth=("no-such-client", "x" * 40)
        ),
        op.browser.post(
            "/introspect",
            data={"token": tokens.access_token, "client_id": rp.client_id, "client_secret": "bad"},
        ),
        op.browser.post("/introspect", data={"token": tokens.access_token, "client_id": public.client_id}),
    ]
    for response in cases:
        oauth_error(response, "invalid_client", 401)
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_introspection_without_token_is_invalid_request(op: OP) -> None:
    rp = op.register()
    oauth_error(op.browser.post("/introspect", data={}, auth=(rp.client_id, rp.secret)), "invalid_request")


# --- revocation (RFC 7009) ----------------------------------------------------------------------


def test_revoking_a_refresh_token_revokes_its_family(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    refreshed = op.refresh(rp, tokens.refresh_token)
    assert refreshed.response.status_code == 200
    response = op.revoke(rp, refreshed.refresh_token, "refresh_token")
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["Cache-Control"] == "no-store"
    for access in (tokens.access_token, refreshed.access_token):
        assert op.active(rp, access) is False
        assert op.userinfo(access).status_code == 401
    oauth_error(op.refresh(rp, refreshed.refresh_token).response, "invalid_grant")


def test_revoking_an_access_token_by_jti_leaves_the_refresh_token(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    assert op.revoke(rp, tokens.access_token, "access_token", auth="post").status_code == 200
    assert op.active(rp, tokens.access_token) is False
    assert op.userinfo(tokens.access_token).status_code == 401
    refreshed = op.refresh(rp, tokens.refresh_token)
    assert refreshed.response.status_code == 200
    assert op.userinfo(refreshed.access_token).status_code == 200


def test_a_wrong_hint_does_not_stop_revocation(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    assert op.revoke(rp, tokens.refresh_token, "access_token").status_code == 200
    assert op.active(rp, tokens.refresh_token) is False
    _cb, tokens, _ = op.full_login(rp, op.user(), browser=op.app.test_client())
    assert op.revoke(rp, tokens.access_token, "refresh_token").status_code == 200
    assert op.active(rp, tokens.access_token) is False


def test_other_clients_tokens_are_untouched_and_the_answer_is_always_200(op: OP) -> None:
    owner = op.register()
    other = op.register()
    _cb, tokens, _ = op.full_login(owner, op.user())
    for token in (tokens.refresh_token, tokens.access_token, "garbage", "a.b.c", "x" * 9000):
        assert op.revoke(other, token).status_code == 200
    assert op.active(owner, tokens.access_token) is True
    assert op.active(owner, tokens.refresh_token) is True
    assert op.refresh(owner, tokens.refresh_token).response.status_code == 200


def test_revocation_errors(op: OP) -> None:
    rp = op.register()
    oauth_error(op.browser.post("/revoke", data={}, auth=(rp.client_id, rp.secret)), "invalid_request")
    unauthenticated = op.browser.post("/revoke", data={"token": "x"})
    oauth_error(unauthenticated, "invalid_client", 401)
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Basic")
    oauth_error(
        op.browser.post("/revoke", data={"token": "x"}, auth=(rp.client_id, "nope" * 10)),
        "invalid_client",
        401,
    )


# --- RP-initiated logout --------------------------------------------------------------------------


def test_logout_with_hint_and_registered_uri_ends_session_and_revokes_tokens(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    response = op.browser.get(
        "/logout?"
        + urlencode(
            {
                "id_token_hint": tokens.id_token,
                "post_logout_redirect_uri": rp.post_logout_redirect_uris[0],
                "state": "bye-1",
            }
        )
    )
    assert response.status_code == 302
    assert response.headers["Location"] == rp.post_logout_redirect_uris[0] + "?state=bye-1"
    # The auth session is over: prompt=none cannot succeed, and the tokens are dead.
    params, _ = op.auth_params(rp, prompt="none")
    assert query_of(op.authorize(params).headers["Location"])["error"] == "login_required"
    assert op.userinfo(tokens.access_token).status_code == 401
    assert op.active(rp, tokens.access_token) is False
    assert op.active(rp, tokens.refresh_token) is False
    oauth_error(op.refresh(rp, tokens.refresh_token).response, "invalid_grant")


def test_logout_by_post_with_client_id(op: OP) -> None:
    """Without an ID token of this session, auth asks first (a cross-site form must not sign
    people out); the confirmation form then signs out and returns to the client."""
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    fields = {"client_id": rp.client_id, "post_logout_redirect_uri": rp.post_logout_redirect_uris[0]}
    ask = op.browser.post("/logout", data=fields)
    assert ask.status_code == 200
    page = ask.get_data(as_text=True)
    assert "Sign out of Provider Center?" in page
    assert op.active(rp, tokens.access_token) is True
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = op.browser.post("/logout", data={**fields, "csrf_token": csrf})
    assert response.status_code == 302
    assert response.headers["Location"] == rp.post_logout_redirect_uris[0]
    assert op.active(rp, tokens.access_token) is False


def test_logout_to_an_unregistered_uri_shows_an_error_and_does_not_redirect(op: OP) -> None:
    rp = op.register()
    other = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    _h, claims = jwt_parts(tokens.id_token)
    forged = tokens.id_token.split(".")
    forged[1] = b64url(json.dumps({**claims, "aud": [other.client_id]}).encode())
    bad_requests = [
        {"id_token_hint": tokens.id_token, "post_logout_redirect_uri": "https://evil.example/bye"},
        {
            "id_token_hint": tokens.id_token,
            "post_logout_redirect_uri": rp.post_logout_redirect_uris[0] + "/x",
        },
        # registered, but for another client than the hint's
        {"id_token_hint": tokens.id_token, "post_logout_redirect_uri": other.post_logout_redirect_uris[0]},
        # a tampered hint proves nothing
        {"id_token_hint": ".".join(forged), "post_logout_redirect_uri": other.post_logout_redirect_uris[0]},
        # no way to tell whose URI it is
        {"post_logout_redirect_uri": rp.post_logout_redirect_uris[0]},
        {"id_token_hint": "garbage", "post_logout_redirect_uri": rp.post_logout_redirect_uris[0]},
    ]
    for params in bad_requests:
        response = op.browser.get("/logout?" + urlencode(params))
        assert response.status_code == 400, params
        assert "Location" not in response.headers
        assert 'role="alert"' in response.get_data(as_text=True)
    # Nothing was ended by the refused requests.
    assert op.active(rp, tokens.access_token) is True


def test_logout_hint_must_be_ours_and_match_client_id(op: OP) -> None:
    rp = op.register()
    other = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    head, payload, sig = tokens.id_token.split(".")
    tampered = f"{head}.{payload[:-4]}AAAA.{sig}"
    for params in (
        # OIDC RP-Initiated Logout §2: client_id and the hint's audience must agree.
        {
            "id_token_hint": tokens.id_token,
            "client_id": other.client_id,
            "post_logout_redirect_uri": other.post_logout_redirect_uris[0],
        },
        {"id_token_hint": tokens.id_token, "client_id": other.client_id},
        # A hint we cannot verify asks for nothing.
        {"id_token_hint": tampered},
        {
            "id_token_hint": tampered,
            "client_id": rp.client_id,
            "post_logout_redirect_uri": rp.post_logout_redirect_uris[0],
        },
    ):
        response = op.browser.get("/logout?" + urlencode(params))
        assert response.status_code == 400, params
        assert "Location" not in response.headers
        assert 'role="alert"' in response.get_data(as_text=True)
    assert op.active(rp, tokens.access_token) is True
    # An expired hint is still a good hint (RPs keep the ID token for exactly this).
    key = op.c.signing.current()
    _h, claims = jwt_parts(tokens.id_token)
    now = int(time.time())
    expired = JsonWebToken(["ES256"]).encode(
        {"alg": "ES256", "kid": key.kid}, {**claims, "iat": now - 7200, "exp": now - 3600}, key.private
    )
    response = op.browser.get(
        "/logout?" + urlencode({"id_token_hint": expired.decode(), "client_id": rp.client_id})
    )
    assert response.status_code == 200
    assert op.active(rp, tokens.access_token) is False


def test_logout_without_parameters_asks_then_shows_signed_out_page(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    ask = op.browser.get("/logout")
    assert ask.status_code == 200
    page = ask.get_data(as_text=True)
    assert "Sign out of Provider Center?" in page
    assert op.active(rp, tokens.access_token) is True  # a bare link signs no one out
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = op.browser.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 200
    assert "signed out" in response.get_data(as_text=True)
    assert op.active(rp, tokens.access_token) is False


# --- consent for third-party clients -------------------------------------------------------------


def _to_consent(op: OP, rp: RP, user, browser=None, **overrides):  # type: ignore[no-untyped-def]
    """Authorize (signing in when asked) until the provider shows its consent page or answers."""
    browser = browser or op.browser
    params, verifier = op.auth_params(rp, **overrides)
    response = op.authorize(params, browser=browser)
    location = response.headers.get("Location", "")
    if urlsplit(location).path == "/signin":
        response = op.sign_in(location, user, browser)
        response = browser.get(response.headers["Location"])
    return response, params, verifier


def _consent_page(op: OP, response, browser=None) -> str:  # type: ignore[no-untyped-def]
    browser = browser or op.browser
    location = response.headers["Location"]
    assert urlsplit(location).path == "/consent", location
    page = browser.get(location)
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _decide(op: OP, html: str, decision: str, browser=None):  # type: ignore[no-untyped-def]
    browser = browser or op.browser
    return browser.post(
        "/consent", data={"csrf_token": csrf(html), "tx": hidden_tx(html), "decision": decision}
    )


def test_consent_is_asked_named_remembered_and_revocable(op: OP) -> None:
    rp = op.register(first_party=False, name="Acme Dental Analytics")
    user = op.user()
    response, params, verifier = _to_consent(op, rp, user, scope="openid email")
    html = _consent_page(op, response)
    assert "Acme Dental Analytics" in html
    assert "Your email address" in html and "Confirm who you are" in html
    assert "Your practice" not in html

    allowed = _decide(op, html, "allow")
    assert allowed.status_code == 302
    done = op.follow_until_client(allowed, rp.redirect_uri)
    callback = op.callback(done, params, verifier)
    assert "code" in callback.params and callback.params["state"] == params["state"]
    assert op.exchange(rp, callback).response.status_code == 200

    # Remembered: a new sign-in in another browser goes straight back.
    other = op.app.test_client()
    again, params, verifier = _to_consent(op, rp, user, browser=other, scope="openid email")
    assert query_of(again.headers["Location"]).get("code"), again.headers["Location"]
    # prompt=none works too, now that consent exists.
    params, _ = op.auth_params(rp, scope="openid email", prompt="none")
    assert "code" in query_of(op.authorize(params).headers["Location"])
    # More than was consented to: asked again.
    more, _, _ = _to_consent(op, rp, user, scope="openid email profile")
    assert "Your name and User ID" in _consent_page(op, more)

    # Withdrawn: asked again.
    with transaction(op.c.db) as db:
        assert consents.revoke(db, user.user_pk, rp.client_id)
    after, _, _ = _to_consent(op, rp, user, scope="openid email")
    assert "Acme Dental Analytics" in _consent_page(op, after)


def test_consent_denied_answers_access_denied(op: OP) -> None:
    rp = op.register(first_party=False)
    response, params, _ = _to_consent(op, rp, op.user())
    denied = _decide(op, _consent_page(op, response), "deny")
    assert denied.status_code == 302
    query = query_of(denied.headers["Location"])
    assert denied.headers["Location"].startswith(rp.redirect_uri)
    assert query["error"] == "access_denied" and query["state"] == params["state"] and "code" not in query


def test_prompt_consent_asks_again_and_prompt_none_without_consent_fails(op: OP) -> None:
    rp = op.register(first_party=False)
    user = op.user()
    # Signed in (through a first-party client), no consent for this one yet.
    op.full_login(op.register(), user)
    params, _ = op.auth_params(rp, prompt="none")
    response = op.authorize(params)
    query = query_of(response.headers["Location"])
    assert query["error"] == "consent_required" and query["state"] == params["state"]

    response, params, verifier = _to_consent(op, rp, user)
    allowed = _decide(op, _consent_page(op, response), "allow")
    assert "code" in query_of(op.follow_until_client(allowed, rp.redirect_uri).headers["Location"])

    response, params, verifier = _to_consent(op, rp, user, prompt="consent")
    html = _consent_page(op, response)  # asked again despite the stored consent
    done = op.follow_until_client(_decide(op, html, "allow"), rp.redirect_uri)
    assert "code" in op.callback(done, params, verifier).params


def test_consent_form_needs_its_csrf_token_and_a_live_request(op: OP) -> None:
    rp = op.register(first_party=False)
    response, _params, _ = _to_consent(op, rp, op.user())
    html = _consent_page(op, response)
    forged = op.browser.post("/consent", data={"tx": hidden_tx(html), "decision": "allow"})
    assert forged.status_code == 400 and "Location" not in forged.headers
    stale = op.browser.post(
        "/consent", data={"csrf_token": csrf(html), "tx": "no-such-tx", "decision": "allow"}
    )
    assert stale.status_code == 400 and "Location" not in stale.headers
    assert op.browser.get("/consent?tx=no-such-tx").status_code == 400


# --- client_credentials -------------------------------------------------------------------------


def test_client_credentials_issues_audience_bound_tokens_without_refresh(op: OP) -> None:
    service = service_client(op)
    for auth in ("basic", "post"):
        response = op.token(service, {"grant_type": "client_credentials", "scope": "ledger.read"}, auth)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_json()
        assert body["token_type"] == "Bearer" and body["scope"] == "ledger.read"
        assert "refresh_token" not in body and "id_token" not in body
        claims = op.c.access_tokens.verify(body["access_token"], API)
        assert claims.aud == [API] and claims.sub == service.client_id and claims.scope == "ledger.read"
        assert op.active(service, body["access_token"])
        assert op.userinfo(body["access_token"]).status_code == 401  # no user behind it

    everything = op.token(service, {"grant_type": "client_credentials"}).get_json()
    assert set(everything["scope"].split()) == {"ledger.read", "ledger.write"}


def test_client_credentials_scopes_are_fixed_at_registration(op: OP) -> None:
    service = service_client(op)
    for scope in ("ledger.read admin", "openid", "ledger.delete"):
        oauth_error(op.token(service, {"grant_type": "client_credentials", "scope": scope}), "invalid_scope")


def test_client_credentials_is_only_for_confidential_service_clients(op: OP) -> None:
    with transaction(op.c.db) as db, pytest.raises(clients.ClientError):
        clients.add_client(
            db,
            op.c.settings.client_secret_key,
            client_id="public-service",
            redirect_uris=[],
            post_logout_redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=["ledger.read"],
            audience=API,
            public=True,
            first_party=True,
            client_secret=None,
        )
    public = op.register(public=True)
    response = op.token(public, {"grant_type": "client_credentials"}, "none")
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_client", "unauthorized_client")
    user_client = op.register()
    oauth_error(op.token(user_client, {"grant_type": "client_credentials"}), "unauthorized_client")
    # ...and a service client cannot run the code flow.
    service = service_client(op)
    oauth_error(
        op.token(service, {"grant_type": "authorization_code", "code": "x", "redirect_uri": API}),
        "unauthorized_client",
    )


# --- token endpoint errors (RFC 6749 §5.2) ----------------------------------------------------------


def test_token_endpoint_errors(op: OP) -> None:
    rp = op.register()
    callback = op.login(rp, op.user())
    good = {
        "grant_type": "authorization_code",
        "code": callback.code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": callback.verifier,
    }
    oauth_error(op.token(rp, {k: v for k, v in good.items() if k != "grant_type"}), "unsupported_grant_type")
    oauth_error(op.token(rp, {**good, "grant_type": "password"}), "unsupported_grant_type")
    oauth_error(op.token(rp, {**good, "grant_type": "implicit"}), "unsupported_grant_type")
    oauth_error(op.token(rp, {k: v for k, v in good.items() if k != "code"}), "invalid_request")
    oauth_error(op.token(rp, {**good, "code": "not-a-code"}), "invalid_grant")
    oauth_error(op.token(rp, {"grant_type": "refresh_token"}), "invalid_request")
    oauth_error(op.token(rp, {"grant_type": "refresh_token", "refresh_token": "nope"}), "invalid_grant")

    # Client authentication failures: 401 with a WWW-Authenticate challenge.
    for response in (
        op.browser.post("/token", data=good, auth=(rp.client_id, "wrong-secret" * 3)),
        op.browser.post("/token", data=good, auth=("no-such-client", "x" * 40)),
        op.browser.post("/token", data={**good, "client_id": rp.client_id, "client_secret": "wrong" * 8}),
        op.browser.post("/token", data=good),
    ):
        oauth_error(response, "invalid_client", 401)
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert response.headers["Pragma"] == "no-cache"

    # The code is still good after all that: the errors spent nothing.
    assert op.exchange(rp, callback).response.status_code == 200


def test_code_is_bound_to_client_redirect_uri_and_verifier(op: OP) -> None:
    rp = op.register()
    thief = op.register()
    callback = op.login(rp, op.user())
    data = {
        "grant_type": "authorization_code",
        "code": callback.code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": callback.verifier,
    }
    oauth_error(op.token(thief, {**data, "redirect_uri": thief.redirect_uri}), "invalid_grant")
    oauth_error(op.token(rp, {**data, "redirect_uri": rp.redirect_uri + "x"}), "invalid_grant")
    # The thief's attempt did not spend the code; the mismatched redirect did (single use).
    assert op.token(rp, data).status_code == 400

    callback = op.login(rp, op.user(), browser=op.app.test_client())
    no_verifier = {**data, "code": callback.code}
    no_verifier.pop("code_verifier")
    oauth_error(op.token(rp, no_verifier), "invalid_request")


def test_public_clients_must_use_pkce(op: OP) -> None:
    public = op.register(public=True)
    user = op.user()
    params, _ = op.auth_params(public, code_challenge=None, code_challenge_method=None)
    query = query_of(op.authorize(params).headers["Location"])
    assert query["error"] == "invalid_request" and "code" not in query
    callback = op.login(public, user)
    tokens = op.exchange(public, callback, auth="none")
    assert tokens.response.status_code == 200, tokens.response.get_data(as_text=True)
    refreshed = op.refresh(public, tokens.refresh_token, auth="none")
    assert refreshed.response.status_code == 200
    # A public client cannot pretend to have a secret.
    response = op.browser.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refreshed.refresh_token},
        auth=(public.client_id, "x" * 40),
    )
    oauth_error(response, "invalid_client", 401)


# --- malformed input, endpoint by endpoint -----------------------------------------------------------


def test_authorize_malformed_input_is_a_clear_error(op: OP) -> None:
    rp = op.register()
    base, _ = op.auth_params(rp)

    def answer(params: dict | list, method: str = "GET"):  # type: ignore[no-untyped-def]
        query = urlencode(params, doseq=True)
        if method == "POST":
            return op.browser.post("/authorize", data=query, content_type="application/x-www-form-urlencoded")
        return op.browser.get("/authorize?" + query)

    # Cannot trust the client or its redirect URI: an error page, never a redirect.
    for params in (
        {**base, "client_id": "x" * 5000},
        {**base, "client_id": ""},
        {k: v for k, v in base.items() if k != "client_id"},
        {**base, "redirect_uri": "http://127.0.0.1:9/" + "x" * 5000},
        {**base, "redirect_uri": "javascript:alert(1)"},
    ):
        response = answer(params)
        assert response.status_code == 400, params
        assert "Location" not in response.headers

    # The client is known: the error goes back to it, state intact.
    cases = [
        ([*base.items(), ("scope", "openid email")], "invalid_request"),
        ([*base.items(), ("client_id", rp.client_id)], "invalid_request"),
        ([*base.items(), ("client_id", "another-client")], "invalid_request"),  # the first is the one trusted
        ([*base.items(), ("redirect_uri", "https://evil.example/cb")], "invalid_request"),
        ([*base.items(), ("state", "second")], "invalid_request"),
        ({**base, "response_type": "token"}, "unsupported_response_type"),
        ({**base, "response_type": "code id_token"}, "unsupported_response_type"),
        ({**base, "scope": "profile email"}, "invalid_scope"),
        ({**base, "scope": ""}, "invalid_scope"),
        ({**base, "max_age": "ten"}, "invalid_request"),
        ({**base, "max_age": "-1"}, "invalid_request"),
        ({**base, "prompt": "none login"}, "invalid_request"),
        ({**base, "response_mode": "fragment"}, "invalid_request"),
        ({**base, "code_challenge": "short"}, "invalid_request"),
        ({**base, "code_challenge_method": "S512"}, "invalid_request"),
        ({**base, "id_token_hint": "garbage"}, "invalid_request"),
    ]
    for params, error in cases:
        for method in ("GET", "POST"):
            response = answer(params, method)
            assert response.status_code == 302, (params, response.get_data(as_text=True)[:300])
            location = response.headers["Location"]
            assert location.startswith(rp.redirect_uri + "?"), location
            query = query_of(location)
            assert query["error"] == error, (params, query)
            assert "code" not in query
            if "state" in dict(params) and not isinstance(params, list):
                assert query["state"] == base["state"]
            assert NQSCHAR.match(query.get("error_description", ""))

    # Big but legal values are carried through the sign-in intact.
    state = "s" * 2000
    callback = op.login(rp, op.user(), state=state, nonce="n" * 1000, scope="openid " + "unknown " * 200)
    assert callback.params["state"] == state
    tokens = op.exchange(rp, callback)
    assert op.validate_id_token(tokens, rp, nonce="n" * 1000)


def test_authorize_body_over_the_limit_is_refused_cleanly(op: OP) -> None:
    rp = op.register()
    base, _ = op.auth_params(rp)
    response = op.browser.post("/authorize", data={**base, "state": "s" * 70_000})
    assert response.status_code == 413


def test_token_endpoint_malformed_input(op: OP) -> None:
    rp = op.register()
    callback = op.login(rp, op.user())
    good = {
        "grant_type": "authorization_code",
        "code": callback.code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": callback.verifier,
    }
    basic = {"Authorization": "Basic " + b64url(f"{rp.client_id}:{rp.secret}".encode())}
    for name, other in (("code", "other"), ("grant_type", "refresh_token"), ("code_verifier", "x" * 43)):
        repeated = urlencode([*good.items(), (name, other)])
        response = op.browser.post(
            "/token", data=repeated, content_type="application/x-www-form-urlencoded", headers=basic
        )
        oauth_error(response, "invalid_request")
    for data in ({**good, "code": "c" * 60_000}, {**good, "code": "\x00\x01"}, {**good, "code": ""}):
        response = op.token(rp, data)
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert response.get_json()["error"] in ("invalid_grant", "invalid_request")
    # JSON instead of a form: the grant type cannot be read.
    response = op.browser.post("/token", json=good, headers=basic)
    oauth_error(response, "unsupported_grant_type")
    # Not a POST.
    assert op.browser.get("/token?" + urlencode(good)).status_code == 405
    # Broken Basic headers.
    for header in ("Basic", "Basic !!!!", "Basic " + b64url(b"no-colon"), "Bearer x", "Basic " + "A" * 9000):
        response = op.browser.post("/token", data=good, headers={"Authorization": header})
        oauth_error(response, "invalid_client", 401)
    # Too big for the server at all.
    assert op.token(rp, {**good, "code": "c" * 70_000}).status_code == 413
    # None of that spent the code.
    assert op.exchange(rp, callback).response.status_code == 200
    # A code presented with a wrong verifier or redirect URI is spent by that attempt
    # (one try per code); oversized values are refused like any other wrong value.
    for bad in ({"code_verifier": "v" * 5000}, {"redirect_uri": "r" * 5000}):
        fresh = op.login(rp, op.user(), browser=op.app.test_client())
        data = {**good, "code": fresh.code, "code_verifier": fresh.verifier, **bad}
        response = op.token(rp, data)
        assert response.status_code == 400 and response.get_json()["error"] in (
            "invalid_grant",
            "invalid_request",
        )


def test_userinfo_malformed_input(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    service = service_client(op)
    service_token = op.token(service, {"grant_type": "client_credentials"}).get_json()["access_token"]

    missing = op.browser.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == f'Bearer realm="{op.issuer}"'

    for header in (
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer " + "x" * 9000,
        f"Bearer {service_token}",
    ):
        response = op.browser.get("/userinfo", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert response.get_json()["error"] == "invalid_token"

    both = op.browser.post(
        "/userinfo",
        data={"access_token": tokens.access_token},
        headers={"Authorization": f"Bearer {tokens.access_token}"},
    )
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    assert op.browser.post("/userinfo", data={"access_token": "garbage"}).status_code == 401
    # A token in the query string is not accepted (RFC 6750 §2.3 is not supported).
    assert op.browser.get("/userinfo?access_token=" + tokens.access_token).status_code == 401
    assert op.browser.put("/userinfo").status_code == 405


def test_introspection_and_revocation_malformed_input(op: OP) -> None:
    rp = op.register()
    _cb, tokens, _ = op.full_login(rp, op.user())
    basic = {"Authorization": "Basic " + b64url(f"{rp.client_id}:{rp.secret}".encode())}
    for endpoint in ("/introspect", "/revoke"):
        repeated = urlencode([("token", "garbage"), ("token", tokens.access_token)])
        response = op.browser.post(
            endpoint, data=repeated, content_type="application/x-www-form-urlencoded", headers=basic
        )
        assert response.status_code in (200, 400), endpoint
        for data in (
            {"token": "t" * 60_000},
            {"token": "\x00"},
            {"token": "x", "token_type_hint": "weird" * 100},
        ):
            response = op.browser.post(endpoint, data=data, headers=basic)
            assert response.status_code == 200, (endpoint, response.get_data(as_text=True)[:200])
        response = op.browser.post(endpoint, json={"token": tokens.access_token}, headers=basic)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
        assert op.browser.get(endpoint).status_code == 405
    assert op.active(rp, tokens.access_token) is True


def test_logout_and_consent_malformed_input(op: OP) -> None:
    for params in (
        {"id_token_hint": "x" * 9000},
        {"id_token_hint": "a.b.c"},
        {"state": "s" * 5000},
        {"client_id": "x" * 5000},
    ):
        response = op.app.test_client().get("/logout?" + urlencode(params))
        assert response.status_code in (200, 400), params
        assert "Location" not in response.headers
    response = op.app.test_client().get(
        "/logout?" + urlencode({"client_id": "x" * 5000, "post_logout_redirect_uri": "https://a.example/"})
    )
    assert response.status_code == 400
    for url in ("/consent", "/consent?tx=" + "x" * 5000):
        assert op.app.test_client().get(url).status_code == 400


# --- suspended users -------------------------------------------------------------------------------


def test_suspended_users_tokens_are_inactive(op: OP) -> None:
    rp = op.register()
    user = op.user()
    _cb, tokens, _ = op.full_login(rp, user)
    assert op.active(rp, tokens.access_token)
    accounts.apply(op.c, "suspend", user.user_id, actor="test")
    assert op.active(rp, tokens.access_token) is False
    assert op.active(rp, tokens.refresh_token) is False
    assert op.userinfo(tokens.access_token).status_code == 401
    oauth_error(op.refresh(rp, tokens.refresh_token).response, "invalid_grant")
    params, _ = op.auth_params(rp, prompt="none")
    assert query_of(op.authorize(params).headers["Location"])["error"] == "login_required"


def test_refresh_after_the_session_expired_is_invalid_grant(op: OP) -> None:
    rp = op.register()
    _cb, tokens, claims = op.full_login(rp, op.user())
    op.c.sessions.end(claims["sid"])  # as when the session's time runs out in Redis
    oauth_error(op.refresh(rp, tokens.refresh_token).response, "invalid_grant")
    assert op.active(rp, tokens.access_token) is False
