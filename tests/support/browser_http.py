"""A browser made of ``requests``: follows the portal → auth → portal sign-in by hand."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urljoin

import requests

from services.common.redis_conn import Keys, connect

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TX = re.compile(r'name="tx" value="([^"]+)"')


def _form(html: str) -> dict[str, str]:
    fields = {"csrf_token": CSRF.search(html).group(1)}  # type: ignore[union-attr]
    tx = TX.search(html)
    if tx:
        fields["tx"] = tx.group(1)
    return fields


def follow(session: requests.Session, response: requests.Response, limit: int = 10) -> requests.Response:
    for _ in range(limit):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        response = session.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects")


def sign_in_through_portal(  # type: ignore[no-untyped-def]
    session: requests.Session, portal_url: str, user, *, callback_headers: dict[str, str] | None = None
) -> requests.Response:
    """From the portal's front door to the dashboard: redirect, both forms, callback.

    ``callback_headers`` go with the browser's request to the portal's ``/auth/callback``
    only (the request during which the portal calls auth's token endpoint)."""
    page = follow(session, session.get(portal_url + "/", allow_redirects=False, timeout=10))
    assert "/signin" in page.url, page.url
    response = session.post(
        page.url.split("?")[0], data={**_form(page.text), "user_id": user.user_id, "password": user.password},
        allow_redirects=False, timeout=10,
    )
    verify = follow(session, response)
    assert "/signin/verify" in verify.url, (verify.status_code, verify.text[:300])
    response = session.post(
        verify.url.split("?")[0], data={**_form(verify.text), "code": user.code()}, allow_redirects=False, timeout=10
    )
    for _ in range(10):
        if callback_headers is None or response.status_code not in (301, 302, 303, 307, 308):
            break
        target = urljoin(response.url, response.headers["Location"])
        on_callback = target.startswith(portal_url + "/auth/callback")
        response = session.get(
            target, headers=callback_headers if on_callback else None, allow_redirects=False, timeout=10
        )
        if on_callback:
            break
    else:
        raise AssertionError("too many redirects")
    return follow(session, response)


def portal_access_token(env: dict[str, str], session: requests.Session) -> str:
    """The access token the portal holds server-side for this browser (white-box: read from Redis)."""
    keys = Keys(env["REDIS_KEY_PREFIX"], "portal")
    client = connect(env["REDIS_URL"])
    cookie = next(c.value for c in session.cookies if c.name.endswith("pc_portal_session"))
    stored = json.loads(client.get(keys("session", hashlib.sha256(cookie.encode()).hexdigest())))
    ref = stored["data"]["signed_in"]["ref"]
    return json.loads(client.get(keys("tokens", ref)))["access_token"]
