"""What a person does in a browser during recovery, as plain HTTP against a real stack.

Every ``Client`` comes from its own client address (``X-Forwarded-For``, trusted
because the recovery stack runs with ``AUTH_TRUSTED_PROXIES=1`` as behind an
ingress), so per-address limits set low for the throttle tests never trip over
another test's traffic.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import requests
from sqlalchemy import Engine, select

from services.auth.bootstrap import Container, build
from services.auth.settings import Settings
from services.auth.store.models import OutboxMessage, RecoveryToken, User
from services.common.db import make_engine, session_factory, transaction, utcnow
from tests.support.auth_factory import TestUser
from tests.support.browser_http import CSRF, follow
from tests.support.stack import Stack

BAD_PASSWORD = "password1234"  # noqa: S105 - the blocklisted example of SECURITY.md A.5


HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def new_password() -> str:
    return "Velvet-Canyon-" + secrets.token_hex(5)


def random_ip() -> str:
    return "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


class Client:
    """A browser (cookies kept) at one client address."""

    def __init__(self, stack: Stack, ip: str | None = None) -> None:
        self.stack = stack
        self.ip = ip or random_ip()
        self.session = requests.Session()
        self.session.headers["X-Forwarded-For"] = self.ip

    def get(self, url: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        kwargs.setdefault("timeout", 15)
        return self.session.get(url, **kwargs)

    def submit(
        self, page: requests.Response, data: dict[str, str], url: str | None = None
    ) -> requests.Response:
        """Post the form on ``page`` (its hidden fields, CSRF token included) without following redirects."""
        assert CSRF.search(page.text), (page.status_code, page.url, page.text[:500])
        hidden = dict(HIDDEN.findall(page.text))
        target = url or page.url.split("?")[0]
        return self.session.post(target, data={**hidden, **data}, allow_redirects=False, timeout=15)

    # --- recovery pages ---------------------------------------------------------------

    def forgot_user_id(self, email: str) -> requests.Response:
        page = self.get(self.stack.issuer + "/forgot-user-id")
        return self.submit(page, {"email": email})

    def forgot_password(self, user_id: str, email: str) -> requests.Response:
        page = self.get(self.stack.issuer + "/forgot-password")
        return self.submit(page, {"user_id": user_id, "email": email})

    def reset(self, link: str, password: str, confirm: str | None = None) -> requests.Response:
        """Open the emailed link and set ``password`` on the page it shows."""
        page = self.get(link)
        assert page.status_code == 200, (page.status_code, page.text[:500])
        token = parse_qs(urlsplit(link).query)["token"][0]
        return self.submit(
            page,
            {
                "token": token,
                "new_password": password,
                "confirm_password": password if confirm is None else confirm,
            },
            url=self.stack.issuer + "/reset-password",
        )

    def post_reset(self, token: str, password: str) -> requests.Response:
        """Post the reset form directly (a page left open, a replayed request)."""
        return self.submit(
            self.get(self.stack.issuer + "/forgot-password"),  # any page, for a CSRF token
            {"token": token, "new_password": password, "confirm_password": password},
            url=self.stack.issuer + "/reset-password",
        )

    # --- signing in -------------------------------------------------------------------

    def password_step(self, user_id: str, password: str, start: str | None = None) -> requests.Response:
        """The first sign-in form (at auth directly, or reached from ``start``); the answer, followed."""
        page = follow(self.session, self.get(start or self.stack.issuer + "/signin", allow_redirects=False))
        assert "/signin" in page.url, page.url
        return follow(self.session, self.submit(page, {"user_id": user_id, "password": password}))

    def code_step(self, verify_page: requests.Response, code: str) -> requests.Response:
        assert "/signin/verify" in verify_page.url, (verify_page.status_code, verify_page.text[:500])
        return follow(self.session, self.submit(verify_page, {"code": code}))

    def sign_in_to_portal(self, user: TestUser, password: str, code: str) -> requests.Response:
        verify = self.password_step(user.user_id, password, start=self.stack.portal_url + "/")
        return self.code_step(verify, code)


class Codes:
    """TOTP codes that were not used before: auth accepts each time step once (RFC 6238 §5.2),
    so a second sign-in within 30 seconds takes the next step's code (±1 step is accepted)."""

    def __init__(self) -> None:
        self.used: dict[str, set[int]] = {}

    def fresh(self, user: TestUser) -> str:
        used = self.used.setdefault(user.user_id, set())
        step = int(time.time()) // 30
        while step in used:
            step += 1
        assert step <= int(time.time()) // 30 + 1, "no unused time step within the accepted window"
        used.add(step)
        return pyotp.TOTP(user.totp_secret).at(step * 30)

    def wrong(self, user: TestUser) -> str:
        """A code that matches no step in the window."""
        totp = pyotp.TOTP(user.totp_secret)
        now = time.time()
        valid = {totp.at(now + d * 30) for d in (-2, -1, 0, 1, 2)}
        return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in valid)


def alert(page: requests.Response) -> str:
    match = re.search(r'role="alert"[^>]*>(.*?)</', page.text, re.S)
    return re.sub(r"\s+", " ", match.group(1)).strip() if match else ""


# --- auth's database, white-box -----------------------------------------------------------


class AuthDb:
    """Direct reads (and the one write the expiry test needs) on auth's database."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.engine: Engine = make_engine(stack.env["AUTH_DATABASE_URL"])
        self.sessions = session_factory(self.engine)

    def token_row(self, token: str) -> RecoveryToken | None:
        with self.sessions() as db:
            return db.get(RecoveryToken, hashlib.sha256(token.encode()).hexdigest())

    def expire(self, token: str, seconds_ago: float = 1) -> None:
        """Move the token's end into the past: what 30 minutes of waiting would do."""
        with transaction(self.sessions) as db:
            row = db.get(RecoveryToken, hashlib.sha256(token.encode()).hexdigest())
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=seconds_ago)

    def outbox_to(self, address: str) -> list[OutboxMessage]:
        with self.sessions() as db:
            return list(db.scalars(select(OutboxMessage).where(OutboxMessage.to == address)))

    def close(self) -> None:
        self.engine.dispose()


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


@contextmanager
def auth_container(stack: Stack) -> Iterator[Container]:
    """Auth's composition root on the stack's configuration, for what an operator's CLI does."""
    container = build(Settings.from_env(stack.env))
    try:
        yield container
    finally:
        container.engine.dispose()


def add_users(stack: Stack, practice_name: str, count: int, *, email: str | None = None) -> list[str]:
    """``count`` active users of a new practice without password or authenticator (cheap to
    make: only the email matters to forgot-User-ID); returns their email addresses."""
    from services.auth import directory
    from tests.support.infra import random_id

    with auth_container(stack) as container:
        practice_id = random_id("p-")
        addresses = []
        with transaction(container.db) as db:
            directory.add_practice(db, practice_id, practice_name)
            for _ in range(count):
                user_id = random_id("u.")
                address = email or f"{user_id}@example.test"
                directory.add_user(
                    db,
                    container.passwords,
                    container.secret_box,
                    practice_id=practice_id,
                    user_id=user_id,
                    email=address,
                    name=f"Staff {user_id}",
                    password=None,
                    totp_secret=None,
                    roles=["front_desk"],
                )
                addresses.append(address)
        return addresses


def user_ids_for(stack: Stack, email: str) -> list[str]:
    engine = make_engine(stack.env["AUTH_DATABASE_URL"])
    try:
        with session_factory(engine)() as db:
            return sorted(db.scalars(select(User.user_id).where(User.email == email)))
    finally:
        engine.dispose()
