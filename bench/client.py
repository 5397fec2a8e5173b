"""A small, cheap HTTP/1.1 client for the load callers: one keep-alive
connection per caller, form bodies, a cookie jar and manual redirects.

``requests`` costs about a millisecond of client CPU per request; on a
two-core machine that CPU is taken from the server being measured, so the
callers use ``http.client`` directly.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TX = re.compile(r'name="tx" value="([^"]+)"')


class BenchError(Exception):
    """A request did not answer what the benchmark expected."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Connection:
    """One keep-alive connection to ``host:port``; reconnects once when the server closed it."""

    host: str
    port: int
    timeout_s: float = 30.0
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Reply:
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # An idle keep-alive connection the server closed: the request never reached it.
                self.close()
                if attempt:
                    raise
                continue
            reply = Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.msg.get_all("Set-Cookie") or [],
                data,
            )
            if response.will_close:
                self.close()
            return reply
        raise AssertionError("unreachable")

    def post_form(self, path: str, form: dict, headers: dict | None = None) -> Reply:
        return self.request("POST", path, urlencode(form).encode(), headers)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Browser:
    """A cookie jar over a :class:`Connection`: what a browser without JavaScript does."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.cookies: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _remember(self, reply: Reply) -> Reply:
        for line in reply.set_cookies:
            pair, _, attributes = line.partition(";")
            name, _, value = pair.strip().partition("=")
            lowered = attributes.lower()
            if "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return reply

    def get(self, path: str) -> Reply:
        return self._remember(self.connection.request("GET", path, headers=self._headers()))

    def post(self, path: str, form: dict) -> Reply:
        return self._remember(self.connection.post_form(path, form, self._headers()))


def path_of(location: str) -> str:
    """The path and query of a same-host redirect target."""
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def form_fields(html: str) -> dict[str, str]:
    """The hidden ``csrf_token`` and ``tx`` of one of our forms."""
    csrf = _CSRF.search(html)
    if csrf is None:
        raise BenchError("no csrf_token in the page")
    fields = {"csrf_token": csrf.group(1)}
    tx = _TX.search(html)
    if tx:
        fields["tx"] = tx.group(1)
    return fields


def expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise BenchError(f"{what}: HTTP {reply.status} (expected {status}): {reply.text[:200]!r}")
    return reply


def code_of(location: str) -> str:
    """The authorization code in a redirect to the client."""
    code = parse_qs(urlsplit(location).query).get("code")
    if not code:
        raise BenchError(f"no code in {location[:200]}")
    return code[0]


def sign_in(browser: Browser, authorize: str, user: tuple[str, str, str], redirect_uri: str) -> str:
    """A whole browser sign-in at our auth service; returns the authorization code.

    /authorize → sign-in page → User ID + password → code page → TOTP code →
    /authorize again → redirect to the client with a code.
    """
    return code_of(sign_in_redirect(browser, authorize, user, redirect_uri))


def sign_in_redirect(browser: Browser, authorize: str, user: tuple[str, str, str], redirect_uri: str) -> str:
    """:func:`sign_in`, returning the whole redirect back to the client (code and state)."""
    import pyotp

    user_id, password, secret = user
    reply = expect(browser.get(authorize), 302, "authorize")
    page = expect(browser.get(path_of(reply.location)), 200, "sign-in page")
    reply = browser.post("/signin", {**form_fields(page.text), "user_id": user_id, "password": password})
    expect(reply, 302, "password step")
    page = expect(browser.get(path_of(reply.location)), 200, "code page")
    reply = browser.post("/signin/verify", {**form_fields(page.text), "code": pyotp.TOTP(secret).now()})
    expect(reply, 302, "code step")
    reply = expect(browser.get(path_of(reply.location)), 302, "authorize after sign-in")
    if not reply.location.startswith(redirect_uri):
        raise BenchError(f"sign-in did not go back to the client: {reply.location[:200]}")
    return reply.location
