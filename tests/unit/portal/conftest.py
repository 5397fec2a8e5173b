"""The portal app built on fakes: no Redis, no auth, no network."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.pool import StaticPool

from services.portal.settings import Settings
from services.portal.store.models import Base
from services.portal.tokens import SessionTokens
from services.portal.web.app import create_app
from services.portal.web.context import EXTENSION, Portal
from tests.unit.portal.fakes import FakeClock, FakeRedis, FakeVerifier

ISSUER = "http://auth.test"
PORTAL_URL = "http://portal.test"
METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks.json",
    "end_session_endpoint": f"{ISSUER}/logout",
    "id_token_signing_alg_values_supported": ["ES256"],
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "url": PORTAL_URL,
        "http_bind": "127.0.0.1:0",
        "client_id": "portal",
        "client_secret": "portal-secret",
        "secret_key": "not-a-real-secret",
        "auth_issuer": ISSUER,
        "auth_grpc_addr": "127.0.0.1:1",
        "notify_grpc_addr": "127.0.0.1:1",
        "session_idle_s": 900,
        "session_max_s": 43200,
        "redis_url": "redis://unused",
        "redis_key_prefix": "unit:",
        "database_url": "sqlite://",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Harness:
    app: Flask
    client: FlaskClient
    clock: FakeClock
    redis: FakeRedis
    verifier: FakeVerifier

    @property
    def portal(self) -> Portal:
        return self.app.extensions[EXTENSION]

    def sign_in(
        self,
        *,
        token: str = "at-1",
        refresh_token: str = "",
        sub: str = "user-1",
        ttl_s: int = 300,
        **fields: Any,
    ) -> str:
        """Put a signed-in session in the browser, as a completed callback would."""
        fields.setdefault("practice_id", "demo-dental")
        self.verifier.issue(token, sub=sub, exp=int(self.clock()) + ttl_s, sid="sid-1", **fields)
        ref = self.portal.token_store.create(SessionTokens(token, "idt-1", refresh_token), 900)
        with self.client.session_transaction() as session:
            session["signed_in"] = {"sub": sub, "sid": "sid-1", "ref": ref, "name": "", "at": 0}
        return ref

    def cookie(self) -> str | None:
        cookie = self.client.get_cookie(self.portal.settings.session_cookie_name)
        return cookie.value if cookie else None

    def csrf_from(self, path: str = "/") -> str:
        match = CSRF.search(self.client.get(path).get_data(as_text=True))
        assert match, "no csrf_token on the page"
        return match.group(1)


def memory_engine() -> sa.Engine:
    """An in-memory SQLite database with the portal's tables (one connection, shared)."""
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    return engine


def build_harness(settings: Settings | None = None) -> Harness:
    clock = FakeClock()
    fake_redis = FakeRedis(clock)
    verifier = FakeVerifier()
    app = create_app(
        settings or make_settings(),
        verifier=verifier,
        redis_client=fake_redis,  # type: ignore[arg-type]
        engine=memory_engine(),
        oidc_metadata=METADATA,
        clock=clock,
    )
    return Harness(app, app.test_client(), clock, fake_redis, verifier)


@pytest.fixture
def harness() -> Harness:
    return build_harness()
