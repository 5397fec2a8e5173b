"""Walks the browser side of the OIDC sign-in against auth's Flask app (test client)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from flask.testing import FlaskClient

from tests.support.auth_factory import TestClient, TestUser, pkce_pair

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX = re.compile(r'name="tx" value="([^"]+)"')


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no csrf_token in page"
    return match.group(1)


def hidden_tx(html: str) -> str:
    match = TX.search(html)
    return match.group(1) if match else ""


@dataclass
class AuthorizeResult:
    code: str
    state: str
    verifier: str
    location: str


def authorize_url(client: TestClient, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile email offline_access practice",
        "state": "st-123",
        "nonce": "n-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return "/authorize?" + urlencode(params)


def follow_to_signin(browser: FlaskClient, url: str) -> str:
    response = browser.get(url)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def sign_in(browser: FlaskClient, signin_location: str, user: TestUser, code: str | None = None):
    """Submit both factors; returns the final response of the verify step."""
    page = browser.get(signin_location)
    html = page.get_data(as_text=True)
    response = browser.post(
        "/signin",
        data={
            "csrf_token": csrf(html),
            "tx": hidden_tx(html),
            "user_id": user.user_id,
            "password": user.password,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    verify = browser.get(response.headers["Location"])
    vhtml = verify.get_data(as_text=True)
    return browser.post(
        "/signin/verify",
        data={"csrf_token": csrf(vhtml), "tx": hidden_tx(vhtml), "code": code or user.code()},
    )


def full_authorize(browser: FlaskClient, client: TestClient, user: TestUser, **extra: str) -> AuthorizeResult:
    verifier, challenge = pkce_pair()
    location = follow_to_signin(browser, authorize_url(client, challenge, **extra))
    done = sign_in(browser, location, user)
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    final = browser.get(done.headers["Location"])
    assert final.status_code == 302, final.get_data(as_text=True)[:500]
    location = final.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(client.redirect_uri), location
    return AuthorizeResult(query["code"][0], query.get("state", [""])[0], verifier, location)


def exchange(browser: FlaskClient, client: TestClient, result: AuthorizeResult):
    data = {
        "grant_type": "authorization_code",
        "code": result.code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": result.verifier,
    }
    auth = (client.client_id, client.secret) if client.secret else None
    if auth is None:
        data["client_id"] = client.client_id
    return browser.post("/token", data=data, auth=auth)
