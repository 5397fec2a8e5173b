"""Builds auth containers, practices, users and clients for tests, with random ids."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

import pyotp

from services.auth import clients, directory
from services.auth.bootstrap import Container, build
from services.auth.settings import Settings
from services.common.db import transaction
from services.migrate import upgrade
from tests.support.infra import random_id


def auth_env(database_url: str, redis_url: str, prefix: str, var_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "AUTH_DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "PC_VAR_DIR": str(var_dir),
        "AUTH_ISSUER": "http://127.0.0.1:9",
        "PORTAL_URL": "http://127.0.0.1:9/portal",
        "AUTH_SECRET_KEY": secrets.token_urlsafe(32),
        "AUTH_TOTP_KEY": secrets.token_urlsafe(32),
        "AUTH_CLIENT_SECRET_KEY": secrets.token_urlsafe(32),
        "PORTAL_CLIENT_SECRET": secrets.token_urlsafe(32),
        # Tests sign in many times from one address; the per-address limit is tested on its own.
        "AUTH_ADDRESS_MAX_FAILURES": "100000",
    }
    env.update(extra)
    return env


def make_container(env: dict[str, str]) -> Container:
    upgrade("auth", env)
    container = build(Settings.from_env(env))
    from services.auth.bootstrap import first_start

    first_start(container)
    return container


@dataclass
class TestUser:
    __test__ = False  # not a pytest test class

    user_id: str
    password: str
    totp_secret: str
    practice_id: str
    email: str
    name: str
    user_pk: str

    def code(self, at: float | None = None) -> str:
        import time

        return pyotp.TOTP(self.totp_secret).at(at if at is not None else time.time())


def make_practice(container: Container, name: str = "Test Practice") -> str:
    practice_id = random_id("p-")
    with transaction(container.db) as db:
        directory.add_practice(db, practice_id, name)
    return practice_id


def make_user(
    container: Container,
    practice_id: str | None = None,
    *,
    roles: list[str] | None = None,
    enrolled: bool = True,
) -> TestUser:
    practice_id = practice_id or make_practice(container)
    user_id = random_id("u.")
    password = "Tidal-Orbit-" + secrets.token_hex(6)
    secret = pyotp.random_base32(32)
    email = f"{user_id}@example.test"
    with transaction(container.db) as db:
        user = directory.add_user(
            db,
            container.passwords,
            container.secret_box,
            practice_id=practice_id,
            user_id=user_id,
            email=email,
            name=f"Test {user_id}",
            password=password,
            totp_secret=secret if enrolled else None,
            roles=roles or ["front_desk"],
        )
        pk = user.id
    return TestUser(user_id, password, secret, practice_id, email, f"Test {user_id}", pk)


@dataclass
class TestClient:
    __test__ = False  # not a pytest test class

    client_id: str
    secret: str | None
    redirect_uri: str


def make_client(
    container: Container,
    *,
    public: bool = False,
    first_party: bool = True,
    grant_types: list[str] | None = None,
    scopes: list[str] | None = None,
    audience: str | None = None,
) -> TestClient:
    client_id = random_id("client-")
    redirect_uri = f"http://127.0.0.1:9/{client_id}/cb"
    with transaction(container.db) as db:
        _row, secret = clients.add_client(
            db,
            container.settings.client_secret_key,
            client_id=client_id,
            redirect_uris=[redirect_uri],
            post_logout_redirect_uris=[f"http://127.0.0.1:9/{client_id}/bye"],
            grant_types=grant_types or ["authorization_code", "refresh_token"],
            scopes=scopes or ["openid", "profile", "email", "offline_access", "practice"],
            audience=audience,
            public=public,
            first_party=first_party,
            client_secret=None,
        )
    return TestClient(client_id, secret, redirect_uri)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge
