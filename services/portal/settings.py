"""The portal's settings, read once from the environment and checked at start."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common import config
from services.common.config import ConfigError, Env
from services.common.db import database_url
from services.common.redis_conn import key_prefix, redis_url
from services.common.webserver import default_workers


def _base_url(env: Env, name: str, default: str) -> str:
    value = config.get_str(env, name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name}: expected an http(s) base URL, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the portal's processes need to know, in one place.

    ``url`` is the browser-facing base URL; redirect URIs sent to auth are built
    from it, never from the request's Host header.
    """

    url: str
    http_bind: str
    client_id: str
    client_secret: str
    secret_key: str
    auth_issuer: str
    auth_grpc_addr: str
    notify_grpc_addr: str
    session_idle_s: int
    session_max_s: int
    redis_url: str
    redis_key_prefix: str
    database_url: str
    web_workers: int = 2
    # Proxies in front of the portal that append to X-Forwarded-For (ingress: 1); 0 locally.
    trusted_proxies: int = 0
    # Account look-ups one user may make per window (services/portal/throttle.py).
    lookup_limit: int = 30
    lookup_window_s: int = 600
    # Where supplies orders are emailed for fulfilment (issue 8).
    fulfilment_email: str = "fulfilment@providercenter.example"
    # Support (issue 8): the inbox tickets are emailed to, the contact details shown, and the
    # platform practice whose users are support agents (they see and answer every ticket).
    support_email: str = "support@providercenter.example"
    support_phone: str = "1-800-555-0199"
    support_hours: str = "Monday to Friday, 8 am to 8 pm Eastern"
    support_practice_id: str = "provider-center-support"

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read and validate; raises :class:`ConfigError` naming the bad variable."""
        settings = cls(
            url=_base_url(env, "PORTAL_URL", "http://127.0.0.1:8000"),
            http_bind=config.get_str(env, "PORTAL_HTTP_BIND", "127.0.0.1:8000"),
            client_id=config.get_str(env, "PORTAL_CLIENT_ID", "portal"),
            client_secret=config.dev_secret(env, "PORTAL_CLIENT_SECRET"),
            secret_key=config.dev_secret(env, "PORTAL_SECRET_KEY"),
            auth_issuer=_base_url(env, "AUTH_ISSUER", "http://127.0.0.1:8001"),
            auth_grpc_addr=config.get_str(env, "AUTH_GRPC_ADDR", "127.0.0.1:50051"),
            notify_grpc_addr=config.get_str(env, "NOTIFY_GRPC_ADDR", "127.0.0.1:50052"),
            session_idle_s=config.get_int(env, "PORTAL_SESSION_IDLE_S", 900, minimum=60),
            session_max_s=config.get_int(env, "PORTAL_SESSION_MAX_S", 43200, minimum=60),
            redis_url=redis_url(env),
            redis_key_prefix=key_prefix(env),
            database_url=database_url(env, "portal"),
            web_workers=config.get_int(env, "PORTAL_WEB_WORKERS", default_workers(), minimum=1),
            trusted_proxies=config.get_int(env, "PORTAL_TRUSTED_PROXIES", 0, minimum=0),
            lookup_limit=config.get_int(env, "PORTAL_LOOKUP_LIMIT", 30, minimum=1),
            lookup_window_s=config.get_int(env, "PORTAL_LOOKUP_WINDOW_S", 600, minimum=1),
            fulfilment_email=config.get_str(
                env, "PORTAL_FULFILMENT_EMAIL", "fulfilment@providercenter.example"
            ),
            support_email=config.get_str(env, "PORTAL_SUPPORT_EMAIL", "support@providercenter.example"),
            support_phone=config.get_str(env, "PORTAL_SUPPORT_PHONE", "1-800-555-0199"),
            support_hours=config.get_str(
                env, "PORTAL_SUPPORT_HOURS", "Monday to Friday, 8 am to 8 pm Eastern"
            ),
            support_practice_id=config.get_str(env, "PORTAL_SUPPORT_PRACTICE_ID", "provider-center-support"),
        )
        if settings.session_idle_s > settings.session_max_s:
            raise ConfigError("PORTAL_SESSION_IDLE_S must not exceed PORTAL_SESSION_MAX_S")
        return settings

    @property
    def tls(self) -> bool:
        """Browsers reach the portal over HTTPS: cookies get ``Secure`` and ``__Host-``."""
        return self.url.startswith("https://")

    @property
    def session_cookie_name(self) -> str:
        # Auth and portal share a host locally and browsers do not separate cookies by
        # port, so the name is the portal's own; __Host- pins it to this origin under TLS.
        return "__Host-pc_portal_session" if self.tls else "pc_portal_session"

    @property
    def redirect_uri(self) -> str:
        """Where auth sends the browser back with the authorization code."""
        return f"{self.url}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.url}/signed-out"

    @property
    def discovery_url(self) -> str:
        return f"{self.auth_issuer}/.well-known/openid-configuration"
