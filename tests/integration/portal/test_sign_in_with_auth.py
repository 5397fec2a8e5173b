"""The portal signing in through the real auth service: its HTTP endpoints on a
real port, its gRPC TokenService on another, both on this test's Redis prefix
and databases. The browser is two cookie jars: the portal's Flask test client
and a ``requests`` session for auth.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from services import migrate
from services.common.db import make_engine
from services.portal.settings import Settings
from services.portal.web.app import create_app
from services.portal.web.context import EXTENSION, Portal
from tests.support.infra import Databases, free_port, random_id
from tests.unit.portal.fakes import FakeClock

pytestmark = pytest.mark.integration

PORTAL_URL = "http://127.0.0.1:9"  # loopback (auth requires it for http) and never served
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX = re.compile(r'name="tx" value="([^"]+)"')


@dataclass
class Wired:
    auth_url: str
    auth: object  # services.auth.bootstrap.Container
    portal_app: Flask
    portal: FlaskClient
    clock: FakeClock

    @property
    def ctx(self) -> Portal:
        return self.portal_app.extensions[EXTENSION]


@pytest.fixture
def wired(databases: Databases, redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Wired]:
    from services.auth import grpc_server
    from services.auth.web.app import create_app as create_auth_app
    from tests.support.auth_factory import auth_env, make_container

    port = free_port()
    auth_url = f"http://127.0.0.1:{port}"
    client_secret = secrets.token_urlsafe(32)
    env = auth_env(
        databases.new("auth"),
        redis_url,
        redis_prefix,
        tmp_path,
        AUTH_ISSUER=auth_url,
        PORTAL_URL=PORTAL_URL,
        PORTAL_CLIENT_SECRET=client_secret,
    )
    container = make_container(env)
    http = make_server("127.0.0.1", port, create_auth_app(container), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    grpc, grpc_port, _health = grpc_server.build(container, "127.0.0.1:0")
    grpc.start()

    portal_db = databases.new("portal")
    migrate.upgrade("portal", {"PORTAL_DATABASE_URL": portal_db})
    settings = Settings(
        url=PORTAL_URL,
        http_bind="127.0.0.1:0",
        client_id="portal",
        client_secret=client_secret,
        secret_key=random_id("key-"),
        auth_issuer=auth_url,
        auth_grpc_addr=f"127.0.0.1:{grpc_port}",
        notify_grpc_addr="127.0.0.1:1",
        session_idle_s=900,
        session_max_s=43200,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        database_url=portal_db,
    )
    clock = FakeClock(now=time.time())
    engine = make_engine(portal_db)
    app = create_app(settings, engine=engine, clock=clock)  # the real verifier, Redis and discovery
    try:
        yield Wired(auth_url, container, app, app.test_client(), clock)
    finally:
        app.extensions[EXTENSION].verifier.close()
        grpc.stop(0).wait()
        http.shutdown()
        engine.dispose()
        container.engine.dispose()


def _field(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    return match.group(1) if match else ""


def sign_in_at_auth(browser: requests.Session, url: str, user: object, code_step: int = 0) -> str:
    """Follow auth's pages from the authorization URL to the redirect back to the portal.

    ``code_step`` picks the TOTP code of a later 30-second step: auth accepts a
    code once, and ±1 step, so a second sign-in within a test uses the next one.
    """
    for _ in range(10):
        if url.startswith(PORTAL_URL):
            return url
        response = browser.get(url, allow_redirects=False, timeout=5)
        if response.status_code in (301, 302, 303):
            url = urljoin(url, response.headers["Location"])
            continue
        assert response.status_code == 200, response.text[:500]
        html = response.text
        if 'name="password"' in html:
            form = {"user_id": user.user_id, "password": user.password, "path": "/signin"}  # type: ignore[attr-defined]
        elif 'name="code"' in html:
            form = {"code": user.code(time.time() + 30 * code_step), "path": "/signin/verify"}  # type: ignore[attr-defined]
        else:
            raise AssertionError(f"unexpected auth page: {html[:500]}")
        path = form.pop("path")
        form.update(csrf_token=_field(CSRF, html), tx=_field(TX, html))
        posted = browser.post(urljoin(url, path), data=form, allow_redirects=False, timeout=5)
        assert posted.status_code in (302, 303), posted.text[:500]
        url = urljoin(url, posted.headers["Location"])
    raise AssertionError("auth never sent the browser back to the portal")


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start(wired: Wired, path: str = "/") -> str:
    """Ask the portal for a page and follow it to auth; returns the authorization URL."""
    to_login = wired.portal.get(path)
    assert to_login.status_code == 302
    to_auth = wired.portal.get(to_login.headers["Location"])
    assert to_auth.status_code == 302
    location = to_auth.headers["Location"]
    assert location.startswith(f"{wired.auth_url}/authorize?")
    return location


def test_sign_in_refresh_and_sign_out_through_auth(wired: Wired) -> None:
    from tests.support.auth_factory import make_practice, make_user

    practice_id = make_practice(wired.auth, "Birchwood Vision Care")  # type: ignore[arg-type]
    user = make_user(wired.auth, practice_id, roles=["admin"])  # type: ignore[arg-type]
    browser = requests.Session()

    callback = sign_in_at_auth(browser, start(wired, "/?tab=recent"), user)
    assert callback.startswith(f"{PORTAL_URL}/auth/callback?")
    landed = wired.portal.get(local(callback))
    assert landed.status_code == 302, landed.get_data(as_text=True)[:500]
    assert landed.headers["Location"] == "/?tab=recent"

    dashboard = wired.portal.get("/")
    html = dashboard.get_data(as_text=True)
    assert dashboard.status_code == 200, html[:500]
    assert f"Welcome, {user.name}" in html
    assert "Birchwood Vision Care" in html
    assert "Account administrator" in html

    # Near the end of the access token's 5 minutes the portal refreshes it (auth rotates the refresh token).
    with wired.portal.session_transaction() as session:
        ref = session["signed_in"]["ref"]
    before = wired.ctx.token_store.load(ref, 60)
    wired.clock.advance(280)
    assert wired.portal.get("/").status_code == 200
    after = wired.ctx.token_store.load(ref, 60)
    assert before is not None and after is not None
    assert after.access_token != before.access_token
    assert after.refresh_token and after.refresh_token != before.refresh_token
    assert wired.portal.get("/").status_code == 200

    # Sign out: the portal session ends, then auth ends its own and sends the browser back.
    token = _field(CSRF, wired.portal.get("/").get_data(as_text=True))
    out = wired.portal.post("/logout", data={"csrf_token": token})
    assert out.status_code == 302
    end_session = out.headers["Location"]
    assert end_session.startswith(f"{wired.auth_url}/logout?")
    query = parse_qs(urlsplit(end_session).query)
    assert query["post_logout_redirect_uri"] == [f"{PORTAL_URL}/signed-out"]
    assert query["id_token_hint"][0].count(".") == 2
    back = browser.get(end_session, allow_redirects=False, timeout=5)
    assert back.status_code == 302
    assert back.headers["Location"] == f"{PORTAL_URL}/signed-out"
    assert "You have signed out" in wired.portal.get("/signed-out").get_data(as_text=True)

    # The revoked access token is refused (after the verifier's one-second cache).
    wired.clock.advance(2)
    time.sleep(1.1)
    assert not wired.ctx.verifier.verify(after.access_token).active
    assert wired.portal.get("/").status_code == 302


def test_a_portal_time_out_makes_auth_ask_again(wired: Wired) -> None:
    from tests.support.auth_factory import make_user

    user = make_user(wired.auth)  # type: ignore[arg-type]
    browser = requests.Session()
    callback = sign_in_at_auth(browser, start(wired), user)
    wired.portal.get(local(callback))
    assert wired.portal.get("/").status_code == 200

    # Without the time-out, auth's live session signs the browser straight back in.
    wired.clock.advance(901)
    authorize = start(wired)
    assert parse_qs(urlsplit(authorize).query)["prompt"] == ["login"]
    response = browser.get(authorize, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert not response.headers["Location"].startswith(PORTAL_URL)  # to auth's sign-in page
    callback = sign_in_at_auth(browser, authorize, user, code_step=1)
    assert wired.portal.get(local(callback)).status_code == 302
    assert wired.portal.get("/").status_code == 200


def test_cancelling_at_auth_shows_the_friendly_page(wired: Wired) -> None:
    authorize = start(wired)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    response = wired.portal.get(f"/auth/callback?error=access_denied&state={state}")
    assert response.status_code == 400
    assert "Sign-in did not complete" in response.get_data(as_text=True)


def test_auth_down_is_503_not_500(wired: Wired) -> None:
    # Forget discovery and point it at a closed port: the next sign-in must fetch it and cannot.
    wired.ctx.oidc.server_metadata.clear()
    wired.ctx.oidc._server_metadata_url = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    response = wired.portal.get("/login")
    assert response.status_code == 503
    assert "The portal is temporarily unavailable" in response.get_data(as_text=True)
