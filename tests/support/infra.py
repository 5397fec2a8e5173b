"""Real infrastructure for tests: free ports, Redis servers, databases.

The suite runs twice in CI: on embedded defaults (a Redis server started here,
SQLite files) and against the machine's shared servers, named by
``PC_TEST_REDIS_URL`` and ``PC_TEST_DATABASE_URL``. On shared servers every
test keeps to its own key prefix and its own randomly named database.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path

import sqlalchemy as sa

from services.common.redis_conn import start_server, wait_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_id(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


class OwnRedis:
    """A Redis server this test started on a free port, so it may stop and start it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = start_server(self.directory, port=self.port)
        wait_ready(self.url)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def shared_redis_url() -> str | None:
    return os.environ.get("PC_TEST_REDIS_URL") or None


def shared_database_url() -> str | None:
    return os.environ.get("PC_TEST_DATABASE_URL") or None


class Databases:
    """Makes a fresh database per request: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server_url = shared_database_url()
        self.created: list[str] = []

    def new(self, name: str) -> str:
        if self.server_url is None:
            return f"sqlite:///{self.directory / f'{name}-{secrets.token_hex(4)}.db'}"
        db_name = random_id(f"pc_{name}_")
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db_name}"')
        admin.dispose()
        self.created.append(db_name)
        return sa.engine.make_url(self.server_url).set(database=db_name).render_as_string(
            hide_password=False
        )

    def drop_all(self) -> None:
        if self.server_url is None:
            return
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for db_name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.dispose()
