"""Drives auth's real Flask app the way a relying party and a browser would.

The conformance tests (one per module of the OpenID Foundation's Basic OP
plan) and the endpoint tests share this: register clients with any redirect
URIs, walk the sign-in pages, exchange codes, validate ID tokens against the
published JWKS exactly as OpenID Connect Core §3.1.3.7 asks, call UserInfo,
introspection and revocation. Everything runs against the real app, Redis and
database; nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.jose import JsonWebKey, JsonWebToken
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from services.auth import clients
from services.auth.bootstrap import Container
from services.auth.web.app import create_app
from services.common.db import transaction
from tests.support.auth_factory import TestUser, auth_env, make_container, make_user, pkce_pair
from tests.support.infra import Databases, random_id

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX = re.compile(r'name="tx" value="([^"]+)"')
USER_ID_VALUE = re.compile(r'<input id="user_id" name="user_id" value="([^"]*)"')


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, f"no csrf_token in page: {html[:300]}"
    return match.group(1)


def hidden_tx(html: str) -> str:
    match = TX.search(html)
    return match.group(1) if match else ""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def half_hash(value: str) -> str:
    """at_hash / c_hash for ES256 (OIDC Core §3.1.3.6): left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode()).digest()
    return b64url(digest[: len(digest) // 2])


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Header and payload of a compact JWS, unverified (for assertions on the shape)."""
    head, payload, _sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(payload)))


@dataclass
class RP:
    """A registered client, as the relying party knows it."""

    client_id: str
    secret: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    public: bool = False

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]


@dataclass
class Callback:
    """Where the authorization endpoint sent the browser back, and what the RP kept."""

    location: str
    params: dict[str, str]
    verifier: str
    nonce: str | None
    state: str | None
    redirect_uri: str

    @property
    def code(self) -> str:
        return self.params["code"]


@dataclass
class Tokens:
    response: TestResponse
    body: dict = field(default_factory=dict)

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])

    @property
    def id_token(self) -> str:
        return str(self.body["id_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.body["refresh_token"])


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@contextmanager
def provider_app(databases: Databases, redis_url: str, var_dir: Path) -> Iterator[tuple[Flask, Container]]:
    """One real auth app (its own database and Redis key prefix) that a module's
    tests share; each test still makes its own clients, users and browser."""
    env = auth_env(
        databases.new("auth"),
        redis_url,
        random_id("test:") + ":",
        var_dir,
        # Password hashing strength is tested with the sign-in; here it would only cost time.
        AUTH_ARGON2_MEMORY_KIB="1024",
        AUTH_ARGON2_TIME_COST="1",
    )
    container = make_container(env)
    # Flask's test client calls itself http://localhost (no port), which Authlib
    # would refuse as insecure transport; real runs use 127.0.0.1:port or https.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        app = create_app(container)
        app.config["TESTING"] = True
        yield app, container
    container.engine.dispose()


class OP:
    """The OpenID Provider under test, seen from outside."""

    def __init__(self, app: Flask, container: Container, *, pkce: bool = True) -> None:
        # The certification suite's modules send no PKCE (but the PKCE module); our
        # own RPs always do. ``pkce`` sets what authorization requests carry by default.
        self.pkce = pkce
        self.app = app
        self.c = container
        self.issuer = container.settings.issuer
        self.browser = app.test_client()
        self._used_steps: dict[str, set[int]] = {}

    # --- registration -------------------------------------------------------------------

    def register(
        self,
        *,
        redirect_uris: list[str] | None = None,
        post_logout_redirect_uris: list[str] | None = None,
        grant_types: list[str] | None = None,
        scopes: list[str] | None = None,
        audience: str | None = None,
        public: bool = False,
        first_party: bool = True,
        name: str | None = None,
    ) -> RP:
        client_id = random_id("rp-")
        base = f"http://127.0.0.1:9/{client_id}"
        grant_types = grant_types or ["authorization_code", "refresh_token"]
        if redirect_uris is None:
            redirect_uris = [f"{base}/cb"] if "authorization_code" in grant_types else []
        post_logout = post_logout_redirect_uris if post_logout_redirect_uris is not None else [f"{base}/bye"]
        with transaction(self.c.db) as db:
            _row, secret = clients.add_client(
                db,
                self.c.settings.client_secret_key,
                client_id=client_id,
                name=name,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout,
                grant_types=grant_types,
                scopes=scopes or ["openid", "profile", "email", "phone", "offline_access", "practice"],
                audience=audience,
                public=public,
                first_party=first_party,
                client_secret=None,
            )
        return RP(client_id, secret, list(redirect_uris), list(post_logout), public)

    def user(self, **kwargs) -> TestUser:  # type: ignore[no-untyped-def]
        return make_user(self.c, **kwargs)

    def totp(self, user: TestUser) -> str:
        """A code the server has not seen for this user (each 30 s step is accepted once).

        The current step first, then the next (still good if the clock ticks over
        meanwhile), then the previous one.
        """
        used = self._used_steps.setdefault(user.user_pk, set())
        now = time.time()
        current = int(now // 30)
        for step in (current, current + 1, current - 1):
            if step not in used:
                used.add(step)
                return user.code(step * 30)
        raise AssertionError("more than three sign-ins of one user within 30 s; make another user")

    # --- metadata -------------------------------------------------------------------------

    def discovery(self) -> dict:
        response = self.browser.get("/.well-known/openid-configuration")
        assert response.status_code == 200
        return dict(response.get_json())

    def jwks(self) -> dict:
        response = self.browser.get("/jwks.json")
        assert response.status_code == 200
        return dict(response.get_json())

    # --- authorization endpoint --------------------------------------------------------------

    def auth_params(self, rp: RP, **overrides: str | None) -> tuple[dict[str, str], str]:
        """A conformant authorization request (state, nonce, PKCE S256); ``None`` drops a parameter."""
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": rp.redirect_uri,
            "scope": "openid",
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
        }
        verifier = ""
        if self.pkce or rp.public:
            verifier, challenge = pkce_pair()
            params.update(code_challenge=challenge, code_challenge_method="S256")
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}, verifier

    def authorize(
        self, params: dict[str, str], *, browser: FlaskClient | None = None, method: str = "GET"
    ) -> TestResponse:
        browser = browser or self.browser
        if method == "POST":
            return browser.post("/authorize", data=params)
        return browser.get("/authorize?" + urlencode(params))

    def sign_in_page(self, location: str, browser: FlaskClient | None = None) -> str:
        browser = browser or self.browser
        page = browser.get(location)
        assert page.status_code == 200, page.get_data(as_text=True)[:500]
        html = page.get_data(as_text=True)
        assert 'name="user_id"' in html and 'name="password"' in html, html[:500]
        return html

    def sign_in(self, location: str, user: TestUser, browser: FlaskClient | None = None) -> TestResponse:
        """Fill both sign-in forms starting at ``location``; returns the answer to the code form."""
        browser = browser or self.browser
        html = self.sign_in_page(location, browser)
        first = browser.post(
            "/signin",
            data={
                "csrf_token": csrf(html),
                "tx": hidden_tx(html),
                "user_id": user.user_id,
                "password": user.password,
            },
        )
        assert first.status_code == 302, first.get_data(as_text=True)[:500]
        verify = browser.get(first.headers["Location"])
        vhtml = verify.get_data(as_text=True)
        assert 'name="code"' in vhtml, vhtml[:500]
        done = browser.post(
            "/signin/verify",
            data={"csrf_token": csrf(vhtml), "tx": hidden_tx(vhtml), "code": self.totp(user)},
        )
        assert done.status_code == 302, done.get_data(as_text=True)[:500]
        return done

    def follow_until_client(
        self, response: TestResponse, rp_redirect: str, browser: FlaskClient | None = None, hops: int = 5
    ) -> TestResponse:
        """Follow the provider's own redirects until one leaves for the client (bounded)."""
        browser = browser or self.browser
        for _ in range(hops):
            assert response.status_code in (302, 303), (
                response.status_code,
                response.get_data(as_text=True)[:500],
            )
            location = response.headers["Location"]
            if location.startswith(rp_redirect.split("?")[0]):
                return response
            response = browser.get(location)
        raise AssertionError("too many redirects inside the provider")

    def login(
        self,
        rp: RP,
        user: TestUser,
        *,
        browser: FlaskClient | None = None,
        method: str = "GET",
        **overrides: str | None,
    ) -> Callback:
        """The whole front channel: authorization request, sign-in (if asked), callback."""
        browser = browser or self.browser
        params, verifier = self.auth_params(rp, **overrides)
        response = self.authorize(params, browser=browser, method=method)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        location = response.headers["Location"]
        if urlsplit(location).path == "/signin":
            response = self.sign_in(location, user, browser)
        response = self.follow_until_client(response, params["redirect_uri"], browser)
        return self.callback(response, params, verifier)

    def callback(self, response: TestResponse, params: dict[str, str], verifier: str = "") -> Callback:
        location = response.headers["Location"]
        assert location.startswith(params["redirect_uri"].split("?")[0]), location
        return Callback(
            location=location,
            params=query_of(location),
            verifier=verifier,
            nonce=params.get("nonce"),
            state=params.get("state"),
            redirect_uri=params["redirect_uri"],
        )

    # --- token endpoint -------------------------------------------------------------------

    def token(self, rp: RP | None, data: dict[str, str], auth: str = "basic", **kwargs) -> TestResponse:  # type: ignore[no-untyped-def]
        """POST /token authenticating as ``rp`` with ``auth``: basic, post, none (public) or no auth."""
        data = dict(data)
        basic = None
        if rp is not None and auth == "basic":
            basic = (rp.client_id, rp.secret or "")
        elif rp is not None and auth == "post":
            data.update(client_id=rp.client_id, client_secret=rp.secret or "")
        elif rp is not None and auth == "none":
            data["client_id"] = rp.client_id
        return self.browser.post("/token", data=data, auth=basic, **kwargs)

    def exchange(self, rp: RP, callback: Callback, auth: str = "basic") -> Tokens:
        data = {
            "grant_type": "authorization_code",
            "code": callback.code,
            "redirect_uri": callback.redirect_uri,
        }
        if callback.verifier:
            data["code_verifier"] = callback.verifier
        response = self.token(rp, data, auth=auth)
        return Tokens(response, response.get_json(silent=True) or {})

    def refresh(self, rp: RP, refresh_token: str, auth: str = "basic", **extra: str) -> Tokens:
        response = self.token(
            rp, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}, auth
        )
        return Tokens(response, response.get_json(silent=True) or {})

    # --- ID token validation (OIDC Core §3.1.3.7) --------------------------------------------

    def validate_id_token(
        self, tokens: Tokens, rp: RP, *, nonce: str | None = None, jwks: dict | None = None
    ) -> dict:
        id_token = tokens.id_token
        header, _ = jwt_parts(id_token)
        assert header["alg"] == "ES256", header
        keys = (jwks or self.jwks())["keys"]
        kids = [key["kid"] for key in keys]
        assert header.get("kid") in kids, (header, kids)
        key_set = JsonWebKey.import_key_set({"keys": keys})
        claims = JsonWebToken(["ES256"]).decode(id_token, key_set)
        now = time.time()
        assert claims["iss"] == self.issuer
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        assert rp.client_id in aud
        if len(aud) > 1:
            assert claims.get("azp") == rp.client_id
        assert claims["exp"] > now
        assert now - 60 <= claims["iat"] <= now + 5
        assert claims["sub"]
        assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= now + 5
        if nonce is not None:
            assert claims.get("nonce") == nonce
        else:
            assert "nonce" not in claims
        assert claims["at_hash"] == half_hash(tokens.access_token)
        return dict(claims)

    # --- resource endpoints ---------------------------------------------------------------

    def userinfo(self, access_token: str, how: str = "get") -> TestResponse:
        if how == "get":
            return self.browser.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if how == "post-header":
            return self.browser.post("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if how == "post-body":
            return self.browser.post("/userinfo", data={"access_token": access_token})
        raise ValueError(how)

    def introspect(self, rp: RP, token: str, hint: str | None = None, auth: str = "basic") -> TestResponse:
        data = {"token": token}
        if hint:
            data["token_type_hint"] = hint
        basic = (rp.client_id, rp.secret or "") if auth == "basic" else None
        if auth == "post":
            data.update(client_id=rp.client_id, client_secret=rp.secret or "")
        return self.browser.post("/introspect", data=data, auth=basic)

    def active(self, rp: RP, token: str, hint: str | None = None) -> bool:
        response = self.introspect(rp, token, hint)
        assert response.status_code == 200, response.get_data(as_text=True)
        return bool(response.get_json()["active"])

    def revoke(self, rp: RP, token: str, hint: str | None = None, auth: str = "basic") -> TestResponse:
        data = {"token": token}
        if hint:
            data["token_type_hint"] = hint
        basic = (rp.client_id, rp.secret or "") if auth == "basic" else None
        if auth == "post":
            data.update(client_id=rp.client_id, client_secret=rp.secret or "")
        return self.browser.post("/revoke", data=data, auth=basic)

    def full_login(
        self, rp: RP, user: TestUser, *, browser: FlaskClient | None = None, **overrides: str | None
    ) -> tuple[Callback, Tokens, dict]:
        """Authorize, exchange and validate: what a conformant RP does before anything else."""
        callback = self.login(rp, user, browser=browser, **overrides)
        assert "code" in callback.params, callback.location
        assert callback.params.get("state") == callback.state
        tokens = self.exchange(rp, callback)
        assert tokens.response.status_code == 200, tokens.response.get_data(as_text=True)
        claims = self.validate_id_token(tokens, rp, nonce=callback.nonce)
        return callback, tokens, claims
