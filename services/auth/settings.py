"""The auth service's settings, read once from the environment and validated at start."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from services.common import config
from services.common.config import ConfigError, Env
from services.common.db import database_url
from services.common.redis_conn import key_prefix, redis_url
from services.common.webserver import default_workers


@dataclass(frozen=True)
class LockoutSettings:
    """Knobs like Keycloak's brute-force detection (see lockout.py)."""

    threshold: int = 5
    first_wait_s: int = 60
    max_wait_s: int = 900
    reset_after_s: int = 12 * 3600
    permanent: bool = False
    # Per client address: more than this many failures in the window answers 429.
    address_failures: int = 20
    address_window_s: int = 600


@dataclass(frozen=True)
class Settings:
    issuer: str
    http_bind: str
    grpc_addr: str
    database_url: str
    redis_url: str
    redis_prefix: str
    secret_key: str
    # 32 bytes for AES-256-GCM over TOTP secrets at rest.
    totp_key: bytes
    # Key of the HMAC-SHA-256 over client secrets.
    client_secret_key: bytes
    portal_url: str
    portal_client_id: str
    portal_client_secret: str | None
    notify_addr: str
    var_dir: Path
    production: bool
    session_idle_s: int = 900
    session_max_s: int = 12 * 3600
    access_token_ttl_s: int = 300
    code_ttl_s: int = 60
    refresh_token_ttl_s: int = 12 * 3600
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    password_min_length: int = 12
    trusted_proxies: int = 0
    support_email: str = "support@providercenter.example"
    support_phone: str = "1-800-555-0199"
    web_workers: int = 2
    # Recovery requests (forgot User ID / password) per client address and per
    # submitted identifier, in a sliding window.
    recovery_per_address: int = 10
    recovery_per_account: int = 3
    recovery_window_s: int = 3600
    lockout: LockoutSettings = field(default_factory=LockoutSettings)

    @property
    def tls(self) -> bool:
        return self.issuer.startswith("https://")

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        issuer = config.get_str(env, "AUTH_ISSUER", "http://127.0.0.1:8001").rstrip("/")
        portal_url = config.get_str(env, "PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")
        min_length = config.get_int(env, "AUTH_PASSWORD_MIN_LENGTH", 12)
        if min_length < 8:
            raise ConfigError("AUTH_PASSWORD_MIN_LENGTH: never fewer than 8 (NIST SP 800-63B)")
        memory = config.get_int(env, "AUTH_ARGON2_MEMORY_KIB", 19456, minimum=1024)
        time_cost = config.get_int(env, "AUTH_ARGON2_TIME_COST", 2, minimum=1)
        return cls(
            issuer=issuer,
            http_bind=config.get_str(env, "AUTH_HTTP_BIND", "127.0.0.1:8001"),
            # Where the gRPC server listens: AUTH_GRPC_BIND, else the address clients use.
            grpc_addr=config.get_str(
                env, "AUTH_GRPC_BIND", config.get_str(env, "AUTH_GRPC_ADDR", "127.0.0.1:50051")
            ),
            database_url=database_url(env, "auth"),
            redis_url=redis_url(env),
            redis_prefix=key_prefix(env),
            secret_key=config.dev_secret(env, "AUTH_SECRET_KEY"),
            totp_key=_derive_key(config.dev_secret(env, "AUTH_TOTP_KEY"), "totp"),
            client_secret_key=_derive_key(config.dev_secret(env, "AUTH_CLIENT_SECRET_KEY"), "client"),
            portal_url=portal_url,
            portal_client_id=config.get_str(env, "PORTAL_CLIENT_ID", "portal"),
            portal_client_secret=config.dev_secret(env, "PORTAL_CLIENT_SECRET")
            if not config.is_production(env)
            else config.get(env, "PORTAL_CLIENT_SECRET"),
            notify_addr=config.get_str(env, "NOTIFY_GRPC_ADDR", "127.0.0.1:50052"),
            var_dir=config.var_dir(env),
            production=config.is_production(env),
            session_idle_s=config.get_int(env, "AUTH_SESSION_IDLE_S", 900, minimum=10),
            session_max_s=config.get_int(env, "AUTH_SESSION_MAX_S", 12 * 3600, minimum=60),
            access_token_ttl_s=config.get_int(env, "AUTH_ACCESS_TOKEN_TTL_S", 300, minimum=10),
            argon2_time_cost=time_cost,
            argon2_memory_kib=memory,
            argon2_parallelism=config.get_int(env, "AUTH_ARGON2_PARALLELISM", 1, minimum=1),
            password_min_length=min_length,
            trusted_proxies=config.get_int(env, "AUTH_TRUSTED_PROXIES", 0, minimum=0),
            support_email=config.get_str(env, "SUPPORT_EMAIL", "support@providercenter.example"),
            support_phone=config.get_str(env, "SUPPORT_PHONE", "1-800-555-0199"),
            web_workers=config.get_int(env, "AUTH_WEB_WORKERS", default_workers(), minimum=1),
            recovery_per_address=config.get_int(env, "AUTH_RECOVERY_PER_ADDRESS", 10, minimum=1),
            recovery_per_account=config.get_int(env, "AUTH_RECOVERY_PER_ACCOUNT", 3, minimum=1),
            recovery_window_s=config.get_int(env, "AUTH_RECOVERY_WINDOW_S", 3600, minimum=1),
            lockout=LockoutSettings(
                threshold=config.get_int(env, "AUTH_LOCKOUT_THRESHOLD", 5, minimum=1),
                first_wait_s=config.get_int(env, "AUTH_LOCKOUT_WAIT_S", 60, minimum=1),
                max_wait_s=config.get_int(env, "AUTH_LOCKOUT_MAX_WAIT_S", 900, minimum=1),
                reset_after_s=config.get_int(env, "AUTH_LOCKOUT_RESET_S", 12 * 3600, minimum=1),
                permanent=config.get_bool(env, "AUTH_LOCKOUT_PERMANENT", False),
                address_failures=config.get_int(env, "AUTH_ADDRESS_MAX_FAILURES", 20, minimum=1),
                address_window_s=config.get_int(env, "AUTH_ADDRESS_WINDOW_S", 600, minimum=1),
            ),
        )


def _derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose from a configured secret (base64 of 32 bytes, or any text)."""
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
