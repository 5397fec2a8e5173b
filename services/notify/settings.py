"""The notify service's settings, read once from the environment and validated at start.

Every knob has a default that works on a fresh machine (SQLite under ``var/``,
mail written as ``.eml`` files under ``var/mail/``); production sets
``NOTIFY_DATABASE_URL`` and ``NOTIFY_SMTP_URL``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from services.common.config import ConfigError, Env, get, get_bool, get_int, get_str, is_production, var_dir
from services.common.db import database_url
from services.notify.transports import parse_from_address, parse_smtp_url

DEFAULT_GRPC_ADDR = "127.0.0.1:50052"
DEFAULT_FROM = "Provider Center <no-reply@providercenter.example>"


def get_float(env: Env, name: str, default: float, *, minimum: float = 0.0) -> float:
    """A finite number of seconds (or similar) from ``name``, at least ``minimum``."""
    raw = get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from exc
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name}: must be a number of at least {minimum}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the notify processes (server, worker, CLI) need to know.

    ``lease_s`` is how long a worker owns a claimed message; it is renewed just
    before each send, so it only has to outlast one SMTP conversation. The SMTP
    timeout bounds each network step, and a conversation has a few of them, so
    the lease must be at least three timeouts long (checked in :meth:`validate`).
    """

    database_url: str
    grpc_addr: str = DEFAULT_GRPC_ADDR
    mail_dir: Path = Path("var/mail")
    smtp_url: str | None = None
    smtp_timeout_s: float = 10.0
    mail_from: str = DEFAULT_FROM
    max_attempts: int = 8
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 900.0
    poll_s: float = 0.5
    lease_s: float = 60.0
    batch_size: int = 10
    migrate_on_start: bool = True
    # HOST:PORT for /metrics and /healthz of the gRPC server and of the worker; unset: none.
    grpc_metrics_bind: str | None = None
    worker_metrics_bind: str | None = None

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read and validate; a bad value raises ``ConfigError`` naming the variable."""
        mail_dir_raw = get(env, "NOTIFY_MAIL_DIR")
        mail_dir = Path(mail_dir_raw).resolve() if mail_dir_raw else var_dir(env) / "mail"
        settings = cls(
            database_url=database_url(env, "notify"),
            # Where the server listens: NOTIFY_GRPC_BIND, else the address clients use.
            grpc_addr=get_str(env, "NOTIFY_GRPC_BIND", get_str(env, "NOTIFY_GRPC_ADDR", DEFAULT_GRPC_ADDR)),
            mail_dir=mail_dir,
            smtp_url=get(env, "NOTIFY_SMTP_URL"),
            smtp_timeout_s=get_float(env, "NOTIFY_SMTP_TIMEOUT_S", 10.0, minimum=0.1),
            mail_from=get_str(env, "NOTIFY_FROM", DEFAULT_FROM),
            max_attempts=get_int(env, "NOTIFY_MAX_ATTEMPTS", 8, minimum=1),
            backoff_base_s=get_float(env, "NOTIFY_BACKOFF_BASE_S", 5.0, minimum=0.0),
            backoff_cap_s=get_float(env, "NOTIFY_BACKOFF_CAP_S", 900.0, minimum=0.0),
            poll_s=get_float(env, "NOTIFY_POLL_S", 0.5, minimum=0.01),
            lease_s=get_float(env, "NOTIFY_LEASE_S", 60.0, minimum=0.5),
            batch_size=get_int(env, "NOTIFY_BATCH_SIZE", 10, minimum=1),
            # Production runs migrations as a one-shot job; locally every process migrates on start.
            migrate_on_start=get_bool(env, "NOTIFY_MIGRATE_ON_START", not is_production(env)),
            grpc_metrics_bind=get(env, "NOTIFY_GRPC_METRICS_BIND"),
            worker_metrics_bind=get(env, "NOTIFY_WORKER_METRICS_BIND"),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field checks that a single variable cannot express."""
        if self.backoff_cap_s < self.backoff_base_s:
            raise ConfigError(
                f"NOTIFY_BACKOFF_CAP_S ({self.backoff_cap_s}) must be at least "
                f"NOTIFY_BACKOFF_BASE_S ({self.backoff_base_s})"
            )
        if self.lease_s < 3 * self.smtp_timeout_s:
            # A lease shorter than one send would let a second worker take a message mid-send.
            raise ConfigError(
                f"NOTIFY_LEASE_S ({self.lease_s}) must be at least three times "
                f"NOTIFY_SMTP_TIMEOUT_S ({self.smtp_timeout_s})"
            )
        if self.smtp_url is not None:
            try:
                parse_smtp_url(self.smtp_url)
            except ValueError as exc:
                raise ConfigError(f"NOTIFY_SMTP_URL: {exc}") from exc
        try:
            parse_from_address(self.mail_from)
        except ValueError as exc:
            raise ConfigError(f"NOTIFY_FROM: {exc}") from exc
