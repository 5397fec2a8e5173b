"""The whole system as real processes on free ports, for integration and e2e tests.

Each process is started with the same command ``providerctl run`` and the
container image use (services/common/supervisor.py), with its own databases,
Redis key prefix, var directory and ports, so stacks never share anything by
accident. Logs go to one file per process, for tests that read them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from services import migrate
from services.common.supervisor import ProcessSpec, process_specs, stop, wait_ready
from tests.support.infra import Databases, free_port, random_id


@dataclass
class Stack:
    env: dict[str, str]
    directory: Path
    specs: dict[str, ProcessSpec] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def portal_url(self) -> str:
        return self.env["PORTAL_URL"]

    @property
    def issuer(self) -> str:
        return self.env["AUTH_ISSUER"]

    @property
    def auth_grpc(self) -> str:
        return self.env["AUTH_GRPC_ADDR"]

    @property
    def notify_grpc(self) -> str:
        return self.env["NOTIFY_GRPC_ADDR"]

    def log_path(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, *names: str, timeout_s: float = 60.0) -> None:
        """Start the named processes (all when none are named) and wait until they are ready."""
        chosen = [self.specs[n] for n in (names or self.specs)]
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        for spec in chosen:
            handle = open(self.log_path(spec.name), "ab")  # noqa: SIM115 - kept open for the child
            self.processes[spec.name] = subprocess.Popen(
                spec.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
            handle.close()
        try:
            wait_ready(chosen, self.processes, timeout_s)
        except RuntimeError as exc:
            logs = "\n".join(f"--- {s.name} ---\n{self.log(s.name)[-3000:]}" for s in chosen)
            raise RuntimeError(f"{exc}\n{logs}") from exc

    def stop(self, *names: str, kill: bool = False) -> None:
        chosen = {n: p for n, p in self.processes.items() if not names or n in names}
        if kill:
            for process in chosen.values():
                if process.poll() is None:
                    os.killpg(process.pid, 9)
            for process in chosen.values():
                process.wait(10)
        else:
            stop(chosen, grace_s=15)
        for name in chosen:
            self.processes.pop(name, None)

    def run_cli(self, *args: str, stdin: str | None = None, timeout_s: float = 60) -> subprocess.CompletedProcess:
        """Run ``providerctl`` against this stack, as an operator would."""
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


def make_stack(directory: Path, databases: Databases, redis_url: str, **extra: str) -> Stack:
    """Configure (and migrate) a stack; call ``start()`` to run it."""
    directory.mkdir(parents=True, exist_ok=True)
    auth_port, portal_port, auth_grpc, notify_grpc = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "PC_VAR_DIR": str(directory / "var"),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": random_id("stack:") + ":",
        "AUTH_DATABASE_URL": databases.new("auth"),
        "NOTIFY_DATABASE_URL": databases.new("notify"),
        "PORTAL_DATABASE_URL": databases.new("portal"),
        "AUTH_ISSUER": f"http://127.0.0.1:{auth_port}",
        "AUTH_HTTP_BIND": f"127.0.0.1:{auth_port}",
        "PORTAL_URL": f"http://127.0.0.1:{portal_port}",
        "PORTAL_HTTP_BIND": f"127.0.0.1:{portal_port}",
        "AUTH_GRPC_ADDR": f"127.0.0.1:{auth_grpc}",
        "NOTIFY_GRPC_ADDR": f"127.0.0.1:{notify_grpc}",
        "NOTIFY_MAIL_DIR": str(directory / "mail"),
        "AUTH_WEB_WORKERS": "1",
        "PORTAL_WEB_WORKERS": "1",
        "AUTH_SECRET_KEY": secrets.token_urlsafe(32),
        "AUTH_TOTP_KEY": secrets.token_urlsafe(32),
        "AUTH_CLIENT_SECRET_KEY": secrets.token_urlsafe(32),
        "PORTAL_CLIENT_SECRET": secrets.token_urlsafe(32),
        "PORTAL_SECRET_KEY": secrets.token_urlsafe(32),
        # The per-address limit would trip over a test's own traffic; it is tested on its own.
        "AUTH_ADDRESS_MAX_FAILURES": "100000",
        "AUTH_RECOVERY_PER_ADDRESS": "100000",
        "AUTH_RECOVERY_PER_ACCOUNT": "100000",
        "NOTIFY_POLL_S": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PC_ENV", None)
    env.update(extra)
    for service in migrate.SERVICES:
        migrate.upgrade(service, env)
    stack = Stack(env=env, directory=directory)
    stack.specs = {spec.name: spec for spec in process_specs(env)}
    return stack


def wait_for(predicate, timeout_s: float = 20.0, interval_s: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll until ``predicate()`` is truthy (and return it), or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)


def add_staff(stack: Stack, *, roles: list[str] | None = None, practice_name: str = "Test Practice"):  # type: ignore[no-untyped-def]
    """A practice (in auth's directory and the portal's profiles) with one enrolled staff user."""
    from services.auth.bootstrap import build
    from services.auth.settings import Settings
    from services.portal import bootstrap as portal_bootstrap
    from tests.support.auth_factory import make_practice, make_user

    container = build(Settings.from_env(stack.env))
    try:
        practice_id = make_practice(container, practice_name)
        portal_bootstrap.add_practice(stack.env, practice_id, practice_name)
        return make_user(container, practice_id, roles=roles or ["admin"])
    finally:
        container.engine.dispose()
