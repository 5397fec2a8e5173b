"""What the sign-in security tests share: an auth app on real Redis and a real
database, a browser that walks the sign-in pages, the real ``providerctl``, and
readers for the security event log and the outbox."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from services.auth.bootstrap import Container
from services.auth.lockout import Lockout
from services.auth.store.models import OutboxMessage, SecurityEvent, User
from tests.support.auth_factory import TestUser as AuthUser

REPO = Path(__file__).resolve().parents[4]
# The console script operators run (``python -m services.cli`` imports the module twice,
# as __main__ and as services.cli, so its error exits differ).
PROVIDERCTL = Path(sys.executable).parent / "providerctl"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
RECOVERY_CODE = re.compile(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>")
LOCKED_TEXT = "temporarily locked"
BAD_CREDENTIALS_TEXT = "The User ID or password is not right"
UNAVAILABLE_TEXT = "Sign-in is temporarily unavailable, try again in a few minutes"


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, f"no csrf_token in page:\n{html[:500]}"
    return match.group(1)


def cli_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a real process: ours without any service settings, plus the test's."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PC_", "AUTH_", "REDIS_", "NOTIFY_", "PORTAL_"))
    }
    return {**base, "PYTHONPATH": str(REPO), **env}


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``providerctl ARGS…`` as operators run it, with this test's configuration."""
    return subprocess.run(
        [str(PROVIDERCTL), *args],
        cwd=REPO,
        env=cli_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_until(
    predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


_USED_STEPS: dict[str, set[int]] = {}


def fresh_code(user: AuthUser, secret: str | None = None) -> str:
    """A valid code for ``user`` (or for a new ``secret`` of theirs) whose time step no
    sign-in of this test has used yet: each step is accepted once per user, and the
    steps either side are within the ±1 window."""
    used = _USED_STEPS.setdefault(user.user_id, set())
    current = int(time.time() // 30)
    for step in (current, current + 1, current - 1):
        if step not in used:
            used.add(step)
            return pyotp.TOTP(secret or user.totp_secret).at(step * 30)
    raise AssertionError("more than three sign-ins in one 30-second step for one user")


class Browser:
    """One browser (its own cookies) walking the sign-in pages of the app."""

    def __init__(self, client: FlaskClient, *, ip: str | None = None, user_agent: str = "pytest-browser/1.0"):
        self.client = client
        self.headers = {"User-Agent": user_agent}
        if ip is not None:
            self.headers["X-Forwarded-For"] = ip

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, data: dict[str, str]) -> Any:
        return self.client.post(path, data=data, headers=self.headers)

    def form(self, path: str, **data: str) -> Any:
        """GET the page for its CSRF token, then POST the form to it."""
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code, page.get_data(as_text=True)[:500])
        return self.post(path, {"csrf_token": csrf(page.get_data(as_text=True)), **data})

    def password(self, user_id: str, password: str) -> Any:
        return self.form("/signin", user_id=user_id, password=password)

    def code(self, code: str) -> Any:
        return self.form("/signin/verify", code=code)

    def sign_in(self, user: AuthUser, code: str | None = None) -> Any:
        """Both factors; returns the verify step's response (302 to the account page on success)."""
        first = self.password(user.user_id, user.password)
        assert first.status_code == 302, (first.status_code, first.get_data(as_text=True)[:800])
        assert first.headers["Location"].endswith("/signin/verify"), first.headers["Location"]
        return self.code(code or fresh_code(user))

    def device_cookie(self) -> str | None:
        cookie = self.client.get_cookie("pc_auth_device")
        return cookie.value if cookie else None


@dataclass
class Auth:
    env: dict[str, str]
    container: Container
    app: Flask
    browsers: list[Browser] = field(default_factory=list)

    def browser(self, **kwargs: Any) -> Browser:
        return Browser(self.app.test_client(), **kwargs)

    @property
    def lockout(self) -> Lockout:
        return self.container.lockout

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, stdin=stdin)

    def events(self, user_id: str | None = None, event: str | None = None) -> list[SecurityEvent]:
        with self.container.db() as db:
            query = select(SecurityEvent).order_by(SecurityEvent.id)
            if user_id is not None:
                query = query.where(SecurityEvent.user_id == user_id.lower())
            if event is not None:
                query = query.where(SecurityEvent.event == event)
            return list(db.scalars(query))

    def outbox(self, template: str, to: str) -> list[OutboxMessage]:
        with self.container.db() as db:
            query = select(OutboxMessage).where(OutboxMessage.template == template, OutboxMessage.to == to)
            return list(db.scalars(query.order_by(OutboxMessage.created_at)))

    def user(self, user_id: str) -> User:
        with self.container.db() as db:
            user = db.scalar(select(User).where(User.user_id == user_id))
            assert user is not None
            return user
