"""Real parts for the notify integration tests: a migrated outbox database (SQLite,
or PostgreSQL when PC_TEST_DATABASE_URL is set), an SMTP server (aiosmtpd) as
the inbox, the gRPC server on port 0, and notify processes started the way
the container image starts them.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select

from services.common.db import make_engine, session_factory
from services.notify import bootstrap
from services.notify.outbox import Outbox
from services.notify.settings import Settings
from services.notify.store.models import DeliveryAttempt, Message
from tests.support.infra import Databases, free_port, random_id

REPO = Path(__file__).resolve().parents[3]

PARAMS = {"name": "Ann Smith", "when": "26 Nov 2026 12:00 UTC"}


def wait_until(
    predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Poll ``predicate`` until it is truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


# --- the outbox database ------------------------------------------------------------


@dataclass
class NotifyDb:
    """A fresh, migrated notify database and a way to look inside it."""

    url: str
    engine: Engine

    def counts(self) -> Counter[str]:
        with self.engine.connect() as conn:
            return Counter(
                {
                    state: n
                    for state, n in conn.execute(select(Message.state, func.count()).group_by(Message.state))
                }
            )

    def message(self, message_id: str) -> Message:
        with session_factory(self.engine)() as session:
            message = session.get(Message, message_id)
            assert message is not None
            return message

    def attempts(self, message_id: str | None = None) -> list[DeliveryAttempt]:
        query = select(DeliveryAttempt).order_by(DeliveryAttempt.id)
        if message_id is not None:
            query = query.where(DeliveryAttempt.message_id == message_id)
        with session_factory(self.engine)() as session:
            return list(session.scalars(query))


@pytest.fixture
def notify_db(databases: Databases) -> Iterator[NotifyDb]:
    url = databases.new("notify")
    bootstrap.ensure_schema(Settings(database_url=url))
    engine = make_engine(url)
    yield NotifyDb(url, engine)
    engine.dispose()


@pytest.fixture
def settings(notify_db: NotifyDb, tmp_path: Path) -> Settings:
    """Fast settings for in-process tests: tiny backoff and poll, short leases."""
    return Settings(
        database_url=notify_db.url,
        grpc_addr="127.0.0.1:0",
        mail_dir=tmp_path / "mail",
        smtp_timeout_s=0.5,
        max_attempts=8,
        backoff_base_s=0.05,
        backoff_cap_s=0.2,
        poll_s=0.02,
        lease_s=2.0,
        batch_size=10,
    )


@pytest.fixture
def outbox(notify_db: NotifyDb) -> Outbox:
    return bootstrap.build_outbox(Settings(database_url=notify_db.url), notify_db.engine)


def enqueue(outbox: Outbox, count: int, prefix: str | None = None) -> list[str]:
    prefix = prefix or random_id("k")
    return [
        outbox.send(f"{prefix}-{i}", "mfa_changed", f"user{i}@example.test", PARAMS).message_id
        for i in range(count)
    ]


# --- the SMTP inbox -------------------------------------------------------------------


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it received; ``delay_s`` slows each DATA."""

    delay_s: float = 0.0
    refuse: set[str] = field(default_factory=set)
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter[str]:
        """How often each outbox id arrived (Message-ID is ``<outbox id@domain>``)."""
        with self.lock:
            return Counter(str(m["Message-ID"]).strip("<>").split("@")[0] for m in self.messages)

    def __len__(self) -> int:
        with self.lock:
            return len(self.messages)


class SmtpServer:
    """A real SMTP server on a fixed free port that a test can stop and start again."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.port = free_port()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, ready_timeout=5)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(Inbox())
    server.start()
    yield server
    server.stop()


# --- the gRPC server in-process -------------------------------------------------------


@pytest.fixture
def grpc_address(settings: Settings) -> Iterator[str]:
    running = bootstrap.build_grpc_server(settings, "127.0.0.1:0")
    running.server.start()
    yield f"127.0.0.1:{running.port}"
    running.stop(grace_s=0.5)


# --- notify processes -----------------------------------------------------------------


@functools.cache
def _full_cli_imports() -> bool:
    try:
        from services.cli import build_parser

        build_parser()
    except ImportError:
        return False
    return True


def cli_prefix() -> tuple[str, ...]:
    """``python -m services.cli notify`` (what the image and ``providerctl run`` start)
    when every service's CLI imports; until then notify's own entry point."""
    if _full_cli_imports():
        return (sys.executable, "-m", "services.cli", "notify")
    return (sys.executable, "-m", "services.notify")


def ctl_prefix() -> tuple[str, ...]:
    """What the ``providerctl`` console script runs, for one-shot operator commands."""
    if _full_cli_imports():
        return (sys.executable, "-c", "import sys; from services.cli import main; sys.exit(main())", "notify")
    return (sys.executable, "-m", "services.notify")


class NotifyProcess:
    """A notify process (server, worker or a CLI command) with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> NotifyProcess:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [*cli_prefix(), *self.args], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        assert self.popen is not None
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signum)

    def wait(self, timeout_s: float) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, like a node dying."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Processes:
    """Starts notify processes for one test and stops every one of them afterwards."""

    tmp_path: Path
    base_env: dict[str, str]
    started: list[NotifyProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        return {**self.base_env, **overrides}

    def start(self, *args: str, **env: str) -> NotifyProcess:
        log_path = self.tmp_path / f"{args[0]}-{len(self.started)}.log"
        process = NotifyProcess(list(args), self.env(**env), log_path).start()
        self.started.append(process)
        return process

    def run(self, *args: str, timeout_s: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
        """A one-shot CLI command, e.g. ``notify retry ID``."""
        return subprocess.run(
            [*ctl_prefix(), *args],
            cwd=REPO,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def stop_all(self) -> None:
        for process in self.started:
            if process.alive():
                process.signal(signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def processes(tmp_path: Path, notify_db: NotifyDb) -> Iterator[Processes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NOTIFY_", "PC_"))}
    env.update(
        PYTHONPATH=str(REPO),
        PC_VAR_DIR=str(tmp_path / "var"),
        NOTIFY_DATABASE_URL=notify_db.url,
        NOTIFY_POLL_S="0.05",
        NOTIFY_BACKOFF_BASE_S="0.05",
        NOTIFY_BACKOFF_CAP_S="0.2",
    )
    procs = Processes(tmp_path, env)
    yield procs
    procs.stop_all()


def fast_settings(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]
