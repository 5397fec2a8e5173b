"""The portal and auth as real processes (the stack harness), one browser cookie jar.

Both run on 127.0.0.1 and browsers do not keep cookies apart by port, so this
also shows each service keeps to its own cookie names.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin

import pytest
import requests

from tests.support.stack import Stack, add_staff

pytestmark = pytest.mark.integration

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX = re.compile(r'name="tx" value="([^"]+)"')


def _field(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    return match.group(1) if match else ""


def browse(browser: requests.Session, url: str, user: object | None = None, code_step: int = 0) -> requests.Response:
    """Follow redirects across portal and auth, filling auth's sign-in forms for ``user``."""
    for _ in range(20):
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code in (301, 302, 303):
            url = urljoin(url, response.headers["Location"])
            continue
        html = response.text
        if user is not None and 'name="password"' in html:
            form, path = {"user_id": user.user_id, "password": user.password}, "/signin"  # type: ignore[attr-defined]
        elif user is not None and 'name="code"' in html:
            form, path = {"code": user.code(time.time() + 30 * code_step)}, "/signin/verify"  # type: ignore[attr-defined]
        else:
            return response
        form.update(csrf_token=_field(CSRF, html), tx=_field(TX, html))
        posted = browser.post(urljoin(url, path), data=form, allow_redirects=False, timeout=10)
        assert posted.status_code in (302, 303), posted.text[:500]
        url = urljoin(url, posted.headers["Location"])
    raise AssertionError("too many redirects")


def test_sign_in_and_out_across_real_processes(stack: Stack) -> None:
    stack.start("auth-grpc", "auth-web", "portal-web")
    user = add_staff(stack, roles=["front_desk"], practice_name="Harborview Hearing")
    browser = requests.Session()

    dashboard = browse(browser, stack.portal_url + "/", user)
    assert dashboard.url.startswith(stack.portal_url), dashboard.url
    assert dashboard.status_code == 200, dashboard.text[:500]
    assert f"Welcome, {user.name}" in dashboard.text
    assert "Harborview Hearing" in dashboard.text and "Front desk" in dashboard.text
    names = {cookie.name for cookie in browser.cookies}
    assert "pc_portal_session" in names and "pc_auth_session" in names

    signed_out = browser.post(
        stack.portal_url + "/logout",
        data={"csrf_token": _field(CSRF, dashboard.text)},
        allow_redirects=True,
        timeout=10,
    )
    assert signed_out.url == stack.portal_url + "/signed-out"
    assert "You have signed out" in signed_out.text

    # Both sessions ended: the portal sends the browser to auth, and auth asks for the password.
    again = browse(browser, stack.portal_url + "/")
    assert again.url.startswith(stack.issuer + "/signin"), again.url
    assert 'name="password"' in again.text

    log = stack.log("portal-web")
    assert '"msg": "signed in"' in log and '"msg": "signed out"' in log
    assert user.password not in log and "eyJ" not in log  # no password, no JWT
