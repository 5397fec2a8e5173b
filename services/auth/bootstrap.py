"""The composition root: the one place that builds auth's concrete adapters
(database, Redis, keys) from settings, and the first-start registrations."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.auth import clients, directory
from services.auth.devices import DeviceCookies
from services.auth.keys import KeyStore
from services.auth.lockout import Lockout
from services.auth.passwords import Passwords
from services.auth.sessions import RevocationState, SessionStore
from services.auth.settings import Settings
from services.auth.tokens import AccessTokens
from services.auth.totp import SecretBox
from services.common.config import Env
from services.common.db import make_engine, session_factory, transaction
from services.common.maintenance import Maintenance
from services.common.redis_conn import Keys, connect


@dataclass
class Container:
    settings: Settings
    engine: Engine
    db: sessionmaker[Session]
    redis: redis.Redis
    keys: Keys
    signing: KeyStore
    access_tokens: AccessTokens
    passwords: Passwords
    secret_box: SecretBox
    sessions: SessionStore
    revocation: RevocationState
    maintenance: Maintenance
    lockout: Lockout
    devices: DeviceCookies


def build(settings: Settings) -> Container:
    engine = make_engine(settings.database_url)
    db = session_factory(engine)
    client = connect(settings.redis_url)
    keys = Keys(settings.redis_prefix, "auth")
    # Retired keys stay published while tokens signed with them may live (plus the ID token's life).
    signing = KeyStore(db, keep_retired_s=settings.access_token_ttl_s * 2 + 60)
    return Container(
        settings=settings,
        engine=engine,
        db=db,
        redis=client,
        keys=keys,
        signing=signing,
        access_tokens=AccessTokens(signing, settings.issuer, settings.access_token_ttl_s),
        passwords=Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        secret_box=SecretBox(settings.totp_key),
        sessions=SessionStore(client, keys, settings.session_max_s),
        revocation=RevocationState(client, keys),
        maintenance=Maintenance(client, settings.redis_prefix),
        lockout=Lockout(client, keys, settings.lockout),
        devices=DeviceCookies(settings.secret_key),
    )


def first_start(container: Container) -> None:
    """Make the signing key if there is none and register the portal as a first-party client.

    The portal's registration follows the configuration on every start, so a
    changed portal address or secret takes effect without a manual step.
    """
    container.signing.ensure_key()
    settings = container.settings
    if not settings.portal_client_secret:
        return
    with transaction(container.db) as db:
        clients.add_client(
            db,
            settings.client_secret_key,
            client_id=settings.portal_client_id,
            name="Provider Center",
            redirect_uris=[f"{settings.portal_url}/auth/callback"],
            post_logout_redirect_uris=[f"{settings.portal_url}/signed-out"],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile", "email", "offline_access", "practice"],
            audience=None,
            public=False,
            first_party=True,
            client_secret=settings.portal_client_secret,
            replace=True,
        )


def container_from_env(env: Env) -> Container:
    return build(Settings.from_env(env))


def add_practice(env: Env, practice_id: str, name: str) -> None:
    container = container_from_env(env)
    with transaction(container.db) as db:
        directory.add_practice(db, practice_id, name)
