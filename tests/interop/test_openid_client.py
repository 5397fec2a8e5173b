"""Interoperability: a certified OpenID client written by others signs in and refreshes
against the real auth web process.

The relying party is the npm package ``openid-client`` (panva; OpenID Certified),
run by ``openid_client_rp.mjs``: discovery, authorization URL with PKCE S256,
state, nonce and max_age, code exchange with ID token validation against JWKS,
UserInfo, refresh (rotation), introspection, refresh-token replay, end-session
URL. This test is the browser: it follows the authorization URL through the
sign-in pages with ``requests`` and hands the callback URL back to the script.

Needs Node.js 20+ and npm (``npm ci`` installs the pinned lock file on first run).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from services.auth import clients
from services.common.db import transaction
from tests.support import auth_factory
from tests.support.auth_factory import auth_env, make_container, make_user
from tests.support.infra import Databases, free_port, random_id

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
SCRIPT = HERE / "openid_client_rp.mjs"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX = re.compile(r'name="tx" value="([^"]+)"')
HTTP_TIMEOUT_S = 10


def _node_modules() -> None:
    """Install the pinned openid-client from the lock file when it is not there yet."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "Node.js 20+ and npm are needed for the interoperability test (apt-get install nodejs npm)"
        )
    if (HERE / "node_modules" / "openid-client" / "package.json").exists():
        return
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


@dataclass
class AuthProcess:
    issuer: str
    env: dict[str, str]
    log: Path


def _wait_ready(issuer: str, process: subprocess.Popen, log: Path, timeout_s: float = 40) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"auth web exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{issuer}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"auth web not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def auth_web(
    databases: Databases, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[AuthProcess]:
    """``python -m services.cli auth web`` (gunicorn) on a free port, migrated first."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = auth_env(
        databases.new("auth"),
        redis_url,
        redis_prefix,
        tmp_path / "var",
        AUTH_HTTP_BIND=f"127.0.0.1:{port}",
        AUTH_ISSUER=issuer,
        AUTH_WEB_WORKERS="1",
    )
    container = make_container(env)  # migrates (services.migrate.upgrade) and makes the signing key
    container.engine.dispose()
    log = tmp_path / "auth-web.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "auth", "web"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[2],
        )
    try:
        _wait_ready(issuer, process, log)
        yield AuthProcess(issuer, env, log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Script:
    """The Node relying party, spoken to line by line with bounded waits."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["node", str(SCRIPT)],
            cwd=HERE,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def read(self, timeout_s: float = 30) -> dict:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            pytest.fail(f"openid-client script said nothing for {timeout_s} s")
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            pytest.fail(f"openid-client script ended early: {stderr[-2000:]}")
        message = json.loads(line)
        if message.get("step") == "error":
            pytest.fail(f"openid-client failed: {message}")
        return dict(message)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def _form(html: str) -> dict[str, str]:
    csrf = CSRF.search(html)
    assert csrf, html[:500]
    tx = TX.search(html)
    return {"csrf_token": csrf.group(1), **({"tx": tx.group(1)} if tx else {})}


def _browse_to_callback(browser: requests.Session, url: str, issuer: str, user: auth_factory.TestUser) -> str:
    """Follow the provider's pages like a person would, until it sends us back to the client."""
    response = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    for _ in range(10):
        assert response.status_code in (200, 302, 303), (response.status_code, response.text[:500])
        if response.status_code in (302, 303):
            target = urljoin(response.url, response.headers["Location"])
            if not target.startswith(issuer + "/"):
                return target
            response = browser.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
            continue
        path = urlsplit(response.url).path
        if path == "/signin":
            data = {**_form(response.text), "user_id": user.user_id, "password": user.password}
        elif path == "/signin/verify":
            data = {**_form(response.text), "code": user.code()}
        else:
            raise AssertionError(f"unexpected page {response.url}: {response.text[:500]}")
        response = browser.post(
            urljoin(issuer, path), data=data, allow_redirects=False, timeout=HTTP_TIMEOUT_S
        )
    raise AssertionError("the sign-in did not come back to the client")


def test_openid_client_signs_in_refreshes_and_signs_out(auth_web: AuthProcess) -> None:
    _node_modules()
    container = make_container(auth_web.env)
    try:
        user = make_user(container, roles=["manager"])
        client_id = random_id("interop-")
        callback_base = f"http://127.0.0.1:{free_port()}/{client_id}"
        with transaction(container.db) as db:
            _row, secret = clients.add_client(
                db,
                container.settings.client_secret_key,
                client_id=client_id,
                name="openid-client interop",
                redirect_uris=[f"{callback_base}/cb"],
                post_logout_redirect_uris=[f"{callback_base}/bye"],
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "email", "offline_access"],
                audience=None,
                public=False,
                first_party=True,
                client_secret=None,
            )
    finally:
        container.engine.dispose()
    assert secret

    script = Script(
        {
            "ISSUER": auth_web.issuer,
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": secret,
            "REDIRECT_URI": f"{callback_base}/cb",
            "POST_LOGOUT_REDIRECT_URI": f"{callback_base}/bye",
        }
    )
    browser = requests.Session()
    try:
        first = script.read()
        assert first["step"] == "authorize"
        authorization = urlsplit(first["url"])
        assert f"{authorization.scheme}://{authorization.netloc}" == auth_web.issuer
        query = parse_qs(authorization.query)
        assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]

        callback = _browse_to_callback(browser, first["url"], auth_web.issuer, user)
        assert callback.startswith(f"{callback_base}/cb?"), callback
        script.send(callback)
        result = script.read()
    finally:
        script.close()

    assert result["step"] == "done"
    assert result["issuer"] == auth_web.issuer
    claims = result["id_token_claims"]
    assert claims["iss"] == auth_web.issuer and claims["sub"] == user.user_pk
    assert client_id in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["amr"] == ["pwd", "otp"] and claims["acr"] == "urn:providercenter:aal2"
    assert claims["auth_time"] <= time.time() + 5 and claims["sid"]
    assert result["token_type"].lower() == "bearer" and 0 < result["expires_in"] <= 300
    assert set(result["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    info = result["userinfo"]
    assert info["sub"] == user.user_pk and info["email"] == user.email
    assert info["preferred_username"] == user.user_id and info["name"] == user.name

    refresh = result["refresh"]
    assert refresh["rotated"] and refresh["new_access_token"]
    assert refresh["userinfo"]["sub"] == user.user_pk
    assert refresh["introspection"]["active"] is True
    assert refresh["introspection"]["client_id"] == client_id

    # The rotated-out refresh token, replayed: invalid_grant, and the family is revoked.
    assert result["reuse"]["error"] == "invalid_grant", result["reuse"]
    assert result["introspection_after_reuse"]["active"] is False
    assert result["userinfo_after_reuse"]["status"] == 401, result["userinfo_after_reuse"]

    # RP-initiated logout with the URL openid-client built.
    end_session = browser.get(result["end_session_url"], allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert end_session.status_code == 302
    assert end_session.headers["Location"] == f"{callback_base}/bye?state=signed-out"
