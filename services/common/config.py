"""Reading configuration from the environment, the one way every service does it.

Secrets may come from ``NAME_FILE`` (a mounted file) instead of ``NAME``, so
Kubernetes Secrets and Docker secrets work without putting values in the
environment.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

Env = Mapping[str, str]


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names it."""


def get(env: Env, name: str, default: str | None = None) -> str | None:
    """The value of ``name``, or the contents of the file named by ``name_FILE``."""
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from exc
    value = env.get(name)
    if value is None or value == "":
        return default
    return value


def get_str(env: Env, name: str, default: str) -> str:
    value = get(env, name, default)
    assert value is not None
    return value


def get_int(env: Env, name: str, default: int, *, minimum: int | None = None) -> int:
    raw = get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def get_bool(env: Env, name: str, default: bool) -> bool:
    raw = get(env, name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def var_dir(env: Env) -> Path:
    """Where local state lives (SQLite files, mail, the embedded Redis socket)."""
    path = Path(get_str(env, "PC_VAR_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_production(env: Env) -> bool:
    return get_str(env, "PC_ENV", "development") == "production"


def dev_secret(env: Env, name: str, nbytes: int = 32) -> str:
    """A secret from the environment, or, outside production, one generated once
    and kept in ``var/dev-secrets.json`` so every local process agrees on it.

    Production refuses to start without the real value: a generated secret
    there would differ between replicas and vanish with the container.
    """
    value = get(env, name)
    if value:
        return value
    if is_production(env):
        raise ConfigError(f"{name} must be set in production (or {name}_FILE)")
    store = var_dir(env) / "dev-secrets.json"
    # Several processes may start at once; an exclusive create decides who writes.
    for _ in range(50):
        try:
            data = json.loads(store.read_text())
            if name in data:
                return str(data[name])
            data[name] = secrets.token_urlsafe(nbytes)
            tmp = store.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, store)
            continue
        except FileNotFoundError:
            try:
                fd = os.open(store, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps({name: secrets.token_urlsafe(nbytes)}))
        except json.JSONDecodeError:
            # Another process is between open and write; try again.
            import time

            time.sleep(0.02)
    raise ConfigError(f"{name}: could not create a development secret in {store}")
