"""The authorization code flow with PKCE through auth's real app, Redis and database."""

from __future__ import annotations

import pytest

from services.auth.bootstrap import Container
from tests.support.auth_factory import make_client, make_user
from tests.support.oidc_flow import exchange, full_authorize

pytestmark = pytest.mark.integration


def test_sign_in_and_exchange_code_for_tokens(auth_app, auth_container: Container) -> None:
    user = make_user(auth_container, roles=["manager"])
    client = make_client(auth_container)
    browser = auth_app.test_client()
    result = full_authorize(browser, client, user)
    assert result.state == "st-123"

    response = exchange(browser, client, result)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_token"]

    claims = auth_container.access_tokens.verify(body["access_token"], client.client_id)
    assert claims.sub == user.user_pk
    assert claims.practice_id == user.practice_id
    assert claims.roles == ["manager"]
    assert claims.amr == ["pwd", "otp"]
    assert claims.sid

    from authlib.jose import JsonWebToken

    key = auth_container.signing.current()
    id_token = JsonWebToken(["ES256"]).decode(body["id_token"], key.private)
    assert id_token["nonce"] == "n-456"
    assert id_token["aud"] == [client.client_id]
    assert id_token["sid"] == claims.sid
    assert id_token["at_hash"]
    assert id_token["amr"] == ["pwd", "otp"]


def test_code_is_single_use_and_reuse_revokes_tokens(auth_app, auth_container: Container) -> None:
    user = make_user(auth_container)
    client = make_client(auth_container)
    browser = auth_app.test_client()
    result = full_authorize(browser, client, user)
    first = exchange(browser, client, result)
    assert first.status_code == 200
    access = first.get_json()["access_token"]
    claims = auth_container.access_tokens.verify(access, client.client_id)
    assert auth_container.revocation.check(jti=claims.jti, sid=claims.sid, user_pk=claims.sub) is None

    second = exchange(browser, client, result)
    assert second.status_code == 400
    assert second.get_json()["error"] == "invalid_grant"
    assert auth_container.revocation.check(jti=claims.jti, sid=claims.sid, user_pk=claims.sub) == "REVOKED"


def test_wrong_pkce_verifier_is_refused(auth_app, auth_container: Container) -> None:
    user = make_user(auth_container)
    client = make_client(auth_container)
    browser = auth_app.test_client()
    result = full_authorize(browser, client, user)
    result.verifier = "x" * 50
    response = exchange(browser, client, result)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_unregistered_redirect_uri_shows_error_page_without_redirect(
    auth_app, auth_container: Container
) -> None:
    client = make_client(auth_container)
    browser = auth_app.test_client()
    for bad in (client.redirect_uri + "/", client.redirect_uri + "?x=1", "https://evil.example/cb"):
        response = browser.get(
            "/authorize",
            query_string={
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": bad,
                "scope": "openid",
                "code_challenge": "a" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert response.status_code == 400
        assert "Location" not in response.headers
        assert 'role="alert"' in response.get_data(as_text=True)
