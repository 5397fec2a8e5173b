"""``providerctl config check``: the effective configuration, secrets masked,
and a refusal (with a reason per item) of settings unsafe for production."""

from __future__ import annotations

from services.common import config
from services.common.config import ConfigError, Env

# Variables shown by the check; those whose names end like these are masked.
SHOWN = (
    "PC_ENV",
    "PC_VAR_DIR",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "AUTH_ISSUER",
    "AUTH_HTTP_BIND",
    "AUTH_GRPC_ADDR",
    "AUTH_GRPC_BIND",
    "AUTH_DATABASE_URL",
    "AUTH_TRUSTED_PROXIES",
    "AUTH_SECRET_KEY",
    "AUTH_TOTP_KEY",
    "AUTH_CLIENT_SECRET_KEY",
    "PORTAL_URL",
    "PORTAL_HTTP_BIND",
    "PORTAL_DATABASE_URL",
    "PORTAL_CLIENT_ID",
    "PORTAL_CLIENT_SECRET",
    "PORTAL_SECRET_KEY",
    "NOTIFY_GRPC_ADDR",
    "NOTIFY_GRPC_BIND",
    "NOTIFY_DATABASE_URL",
    "NOTIFY_SMTP_URL",
    "NOTIFY_MAIL_DIR",
    "NOTIFY_FROM",
    # Web servers (services/common/gunicorn_conf.py), proxies, shutdown, metrics.
    "AUTH_WEB_WORKERS",
    "PORTAL_WEB_WORKERS",
    "PORTAL_TRUSTED_PROXIES",
    "WEB_THREADS",
    "WEB_GRACEFUL_TIMEOUT_S",
    "WEB_TIMEOUT_S",
    "WEB_KEEPALIVE_S",
    "WEB_ACCESS_LOG",
    "FORWARDED_ALLOW_IPS",
    "GRPC_GRACE_S",
    "AUTH_GRPC_METRICS_BIND",
    "AUTH_RELAY_METRICS_BIND",
    "NOTIFY_GRPC_METRICS_BIND",
    "NOTIFY_WORKER_METRICS_BIND",
)
SECRET_SUFFIXES = ("_KEY", "_SECRET", "_PASSWORD")
# Numbers the processes check at start; a bad one is reported here first.
_NUMBERS = (
    "AUTH_WEB_WORKERS",
    "PORTAL_WEB_WORKERS",
    "AUTH_TRUSTED_PROXIES",
    "PORTAL_TRUSTED_PROXIES",
    "WEB_THREADS",
    "WEB_GRACEFUL_TIMEOUT_S",
    "WEB_TIMEOUT_S",
    "WEB_KEEPALIVE_S",
)
_BINDS = (
    "AUTH_GRPC_METRICS_BIND",
    "AUTH_RELAY_METRICS_BIND",
    "NOTIFY_GRPC_METRICS_BIND",
    "NOTIFY_WORKER_METRICS_BIND",
)


def _defaults() -> dict[str, str]:
    """What an unset variable means, where that is not simply "unset"."""
    from services.common.webserver import default_workers

    workers = f"(default: {default_workers()}, 2 × CPUs + 1)"
    return {
        "AUTH_WEB_WORKERS": workers,
        "PORTAL_WEB_WORKERS": workers,
        "AUTH_TRUSTED_PROXIES": "(default: 0, X-Forwarded-For ignored)",
        "PORTAL_TRUSTED_PROXIES": "(default: 0, X-Forwarded-For ignored)",
        "WEB_THREADS": "(default: 4)",
        "WEB_GRACEFUL_TIMEOUT_S": "(default: 20)",
        "WEB_TIMEOUT_S": "(default: 30)",
        "WEB_KEEPALIVE_S": "(default: 5)",
        "WEB_ACCESS_LOG": "(default: false; the app logs one line per request)",
        "FORWARDED_ALLOW_IPS": "(default: 127.0.0.1)",
        "GRPC_GRACE_S": "(default: 10)",
        **{name: "(unset: no metrics port)" for name in _BINDS},
    }


def _mask(name: str, value: str | None) -> str:
    if value is None:
        return "(unset)"
    if name.endswith(SECRET_SUFFIXES):
        return "****" + (f" ({len(value)} chars)" if value else "")
    if "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:****@{host}"
    return value


def problems(env: Env, *, look_for_demo_users: bool = True) -> list[str]:
    """What would be unsafe in production (checked whatever PC_ENV says)."""
    found = []
    issuer = config.get(env, "AUTH_ISSUER") or "http://127.0.0.1:8001"
    if not issuer.startswith("https://"):
        found.append(f"AUTH_ISSUER {issuer} is not https: tokens and cookies would travel in clear")
    portal = config.get(env, "PORTAL_URL") or "http://127.0.0.1:8000"
    if not portal.startswith("https://"):
        found.append(f"PORTAL_URL {portal} is not https")
    for service in ("AUTH", "PORTAL", "NOTIFY"):
        url = config.get(env, f"{service}_DATABASE_URL")
        if not url or url.startswith("sqlite"):
            found.append(f"{service}_DATABASE_URL is SQLite: use PostgreSQL (postgresql+psycopg://…)")
    if not config.get(env, "REDIS_URL"):
        found.append("REDIS_URL is unset: the embedded Redis is for local runs only")
    if not config.get(env, "NOTIFY_SMTP_URL"):
        found.append("NOTIFY_SMTP_URL is unset: mail would be written to files, never delivered")
    for name in (
        "AUTH_SECRET_KEY",
        "AUTH_TOTP_KEY",
        "AUTH_CLIENT_SECRET_KEY",
        "PORTAL_CLIENT_SECRET",
        "PORTAL_SECRET_KEY",
    ):
        try:
            value = config.get(env, name)
        except ConfigError as exc:
            found.append(str(exc))
            continue
        if not value:
            found.append(
                f"{name} is unset (development secrets are generated into var/ and must not be used)"
            )
        elif value.startswith("dev-only-") or len(value) < 32:
            found.append(f"{name} is a development or short value: use at least 32 random characters")
    memory = config.get_int(env, "AUTH_ARGON2_MEMORY_KIB", 19456)
    time_cost = config.get_int(env, "AUTH_ARGON2_TIME_COST", 2)
    if memory < 19456 or time_cost < 2:
        found.append(
            f"argon2id m={memory} KiB, t={time_cost} is below the OWASP minimum (m=19456 KiB, t=2, p=1)"
        )
    for name in _NUMBERS:
        try:
            config.get_int(env, name, 0, minimum=0)
        except ConfigError as exc:
            found.append(str(exc))
    for name in _BINDS:
        value = config.get(env, name)
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                found.append(f"{name}: expected HOST:PORT, got {value!r}")
    if look_for_demo_users:
        found.extend(_demo_users(env))
    return found


def _demo_users(env: Env) -> list[str]:
    """The documented demo credentials must not exist in production."""
    try:
        from services.auth import directory
        from services.auth.bootstrap import container_from_env
        from services.seed import DEMO_USERS

        container = container_from_env(env)
        with container.db() as db:
            present = [
                demo.user_id for demo in DEMO_USERS if directory.find_user(db, demo.user_id) is not None
            ]
        container.engine.dispose()
    except Exception as exc:  # noqa: BLE001 - the check reports, it does not crash
        return [f"could not look for demo users in the auth database: {type(exc).__name__}"]
    return [f"demo user {user_id} exists: remove the demo practices in production" for user_id in present]


def check(env: Env) -> int:
    print("Effective configuration:")
    defaults = _defaults()
    for name in SHOWN:
        try:
            value = config.get(env, name)
        except ConfigError as exc:
            value = f"(error: {exc})"
        shown = defaults[name] if value is None and name in defaults else _mask(name, value)
        print(f"  {name:<26} {shown}")
    production = config.is_production(env)
    found = problems(env)
    if not found:
        print("No problems found.")
        return 0
    print(
        "\nUnsafe for production:"
        if production
        else "\nWould be unsafe in production (PC_ENV is not production):"
    )
    for item in found:
        print(f"  - {item}")
    return 1 if production else 0
