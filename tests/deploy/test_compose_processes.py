"""deploy/compose.yaml's processes, started as written, outside a container (issue 9).

No container engine runs here, so this test does what compose would do with the
image, on this machine: for every service built from our image (all but the
``admin`` toolbox), it runs ``python -m services.cli <command>`` (the image's
ENTRYPOINT is ``providerctl``, which is ``services.cli:main``) with the service's
``environment`` from compose.yaml (the ``x-env`` anchors resolved by the YAML
loader, ``${VAR:-default}`` from deploy/.env.example as the header comment says
to copy it) on top of the Dockerfile's ``ENV``. ``migrate`` runs first and must
exit 0; each long-running service starts once what it ``depends_on`` is healthy
(or completed), and its compose ``healthcheck.test`` command, as written, run every
CHECK_EVERY_S, must pass within the time compose allows before it calls the
container unhealthy (``start_period`` + ``interval`` x ``retries``: 80 s for each of
ours), but never less than HEALTHY_WITHIN_S: here seven processes and four
gunicorn workers start at once on however few CPUs the test machine has, and
whatever else it runs. Then the stack is used end to end (discovery, the
portal's /readyz, an operator adding a user through the ``admin`` toolbox's
environment, a browser sign-in through the portal, a recovery email through
auth's outbox, the relay, notify and the worker to a real SMTP server), and every
process is stopped as ``docker compose stop`` would: SIGTERM to the main process,
which must exit 0 within the service's ``stop_grace_period``.

The environment is rewritten only where a container differs from this machine's
loopback:

* addresses: each container has its own network namespace (portal-web shares
  auth-web's, ``network_mode: service:auth-web``); ``(namespace, container port)``
  becomes one free port here, so ``0.0.0.0:50051`` in auth-grpc and
  ``auth-grpc:50051`` in its clients name the same free port, while the four
  ``0.0.0.0:9090`` metrics binds get four. A loopback URL in the environment
  (``AUTH_ISSUER``, ``PORTAL_URL``) is the browser's address, published on the
  host by auth-web, and must read the same in every container (it is the issuer
  every token carries), so it maps through the published port; the health check's
  loopback is the container's own;
* Redis, PostgreSQL and the SMTP catcher (``redis``, ``postgres``, ``mailpit``)
  are this test's: the shared or own Redis, fresh databases, a real SMTP server
  (tests/support/smtp_inbox.py);
* files: the secrets each service mounts (and only those) are written under
  tmp_path, where ``*_FILE`` points; each container's tmpfs (``PC_VAR_DIR``) is
  its own directory; ``/app`` is this checkout;
* ``REDIS_KEY_PREFIX`` is the test's own (a shared Redis is never written under
  ``pc:``), and ``AUTH_WEB_WORKERS``/``PORTAL_WEB_WORKERS`` are 2: compose sets no
  CPU limit, so gunicorn's default (2 x CPUs + 1) would follow the size of the
  machine running the tests.

``PC_ENV`` stays ``production`` as compose gives it, with the .env.example
secrets (production refuses generated development secrets, so every secret file
must really be read). Production does not refuse SQLite: the databases are
PostgreSQL when ``PC_TEST_DATABASE_URL`` names one or the CI machine's
(postgresql+psycopg://postgres@127.0.0.1:5432/test) answers, each service its
own fresh database; only a machine without PostgreSQL runs them on SQLite files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
import requests
import sqlalchemy as sa
import yaml

from services.common.redis_conn import connect
from tests.deploy.support import DEPLOY, REPO
from tests.deploy.test_compose import env_example
from tests.support.auth_factory import TestUser
from tests.support.browser_http import _form, follow, sign_in_through_portal
from tests.support.infra import Databases, free_port, random_id
from tests.support.smtp_inbox import SmtpInbox

pytestmark = pytest.mark.integration

COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
# The database CI's machine always has (tests/conftest.py `databases` uses it when named).
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MIGRATE_WITHIN_S = 120.0
HEALTHY_WITHIN_S = 120.0
CHECK_EVERY_S = 2.0
WEB_WORKERS = "2"
# Compose services this test provides itself (the fixtures), by hostname.
INFRA = ("redis", "postgres", "mailpit")
APP_DIR = "/app"  # the image's WORKDIR: this checkout

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
HOST_PORT = re.compile(r"(?<![\w.@:-])(0\.0\.0\.0|127\.0\.0\.1|localhost|[a-z][a-z0-9-]*):(\d{1,5})(?![\w.])")


# ---- reading compose.yaml and the Dockerfile -------------------------------------------


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``."""

    def one(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":-":
            return variables.get(name) or default
        if operator == "-":
            return variables.get(name, default)
        assert name in variables, f"compose.yaml needs {name}, which deploy/.env.example does not set"
        return variables[name]

    return INTERPOLATION.sub(one, value)


def duration_s(text: str) -> float:
    """A compose duration (``30s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's runtime stage (its last FROM), except PATH (the venv's python runs here)."""
    runtime = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    joined = re.sub(r"\\\n", " ", runtime)
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                env[name] = value
    env.pop("PATH", None)
    return env


def image_entrypoint() -> list[str]:
    (line,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ENTRYPOINT ")]
    return yaml.safe_load(line.removeprefix("ENTRYPOINT "))


def namespace(spec: Mapping[str, Any], name: str) -> str:
    """The service whose network namespace ``name`` runs in."""
    mode = str(spec["services"][name].get("network_mode", ""))
    return mode.removeprefix("service:") if mode.startswith("service:") else name


def ours(spec: Mapping[str, Any]) -> list[str]:
    """The services built from our image, in file order, without the tools profile (admin)."""
    return [
        name
        for name, service in spec["services"].items()
        if "build" in service and "tools" not in service.get("profiles", [])
    ]


# ---- one "container": a process with the service's command and environment ---------


@dataclass
class Container:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    def tail(self, chars: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} (last {chars} characters of its output) ---\n{text[-chars:]}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if self.process is not None:
            # gunicorn's workers (or anything else the main process left behind).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class ComposeHere:
    """compose.yaml's services mapped onto this machine (see the module docstring)."""

    spec: dict[str, Any]
    directory: Path
    redis_url: str
    redis_prefix: str
    secret_values: dict[str, str]
    variables: dict[str, str]
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    last_check: dict[str, str] = field(default_factory=dict)

    def port(self, namespace_name: str, container_port: int) -> int:
        return self.ports.setdefault((namespace_name, container_port), free_port())

    def published(self, host_port: int) -> tuple[str, int] | None:
        """The (namespace, container port) compose publishes on the host's loopback ``host_port``."""
        for name, service in self.spec["services"].items():
            for entry in service.get("ports", []):
                host_ip, published_port, target = str(entry).rsplit(":", 2)
                if host_ip == "127.0.0.1" and int(published_port) == host_port:
                    return namespace(self.spec, name), int(target)
        return None

    def address(self, value: str, service: str, *, inside: bool) -> str:
        """``value`` with every container address replaced by this machine's.

        ``inside``: a loopback address means the container's own namespace (a health
        check); otherwise it is the browser's address, published on the host."""
        own = namespace(self.spec, service)
        built = {name for name, s in self.spec["services"].items() if "build" in s}

        def one(match: re.Match[str]) -> str:
            host, port = match.group(1), int(match.group(2))
            if host == "0.0.0.0":
                return f"127.0.0.1:{self.port(own, port)}"
            if host in {"127.0.0.1", "localhost"}:
                target = None if inside else self.published(port)
                return f"127.0.0.1:{self.port(*(target or (own, port)))}"
            if host in built:
                return f"127.0.0.1:{self.port(namespace(self.spec, host), port)}"
            return match.group(0)

        return HOST_PORT.sub(one, value)

    def path(self, value: str, service: str) -> str:
        """A path inside the container, mapped to this machine."""
        base = self.directory / service
        if value.startswith("/run/secrets/"):
            return str(base / "run-secrets" / value.removeprefix("/run/secrets/"))
        for mount in self.spec["services"][service].get("tmpfs", []):
            if value == mount or value.startswith(mount + "/"):
                return str(base / ("tmpfs" + mount) / value[len(mount) :].lstrip("/"))
        if value == APP_DIR or value.startswith(APP_DIR + "/"):
            return str(REPO / value[len(APP_DIR) :].lstrip("/"))
        return value

    def environment(self, service: str) -> dict[str, str]:
        """The container's environment: the image's ENV, then the service's, mapped here."""
        declared = self.spec["services"][service].get("environment", {})
        assert isinstance(declared, dict), f"{service}: environment as a mapping"
        raw = {**image_env(), **{str(k): interpolate(str(v), self.variables) for k, v in declared.items()}}
        env = {
            name: self.path(self.address(value, service, inside=False), service)
            for name, value in raw.items()
        }
        if env.get("REDIS_URL"):
            assert urlsplit(env["REDIS_URL"]).hostname == "redis", env["REDIS_URL"]
            env["REDIS_URL"] = self.redis_url
        if "REDIS_KEY_PREFIX" in env:
            env["REDIS_KEY_PREFIX"] = self.redis_prefix
        env["AUTH_WEB_WORKERS"] = env["PORTAL_WEB_WORKERS"] = WEB_WORKERS
        hosts = [*INFRA, *(name for name, s in self.spec["services"].items() if "build" in s)]
        for name, value in env.items():
            for host in hosts:
                assert not re.search(rf"(?<![\w.-]){re.escape(host)}:\d", value), (service, name, value)
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "TZ"):
            if name in os.environ and name not in env:
                env[name] = os.environ[name]
        return env

    def mount_secrets(self, service: str) -> None:
        """Write the secrets ``service`` mounts, and only those, where its ``*_FILE`` variables point."""
        directory = self.directory / service / "run-secrets"
        directory.mkdir(parents=True, exist_ok=True)
        for secret in self.spec["services"][service].get("secrets", []):
            variable = self.spec["secrets"][secret]["environment"]
            target = directory / secret
            target.write_text(self.secret_values[variable] + "\n")
            target.chmod(0o400)

    def container(self, service: str, command: list[str] | None = None) -> Container:
        self.mount_secrets(service)
        for mount in self.spec["services"][service].get("tmpfs", []):
            (self.directory / service / ("tmpfs" + mount)).mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "services.cli", *(command or self.spec["services"][service]["command"])]
        return Container(service, argv, self.environment(service), self.directory / f"{service}.log")

    def healthcheck_argv(self, service: str) -> list[str] | None:
        check = self.spec["services"][service].get("healthcheck", {})
        if check.get("disable") or "test" not in check:
            return None
        test = list(check["test"])
        assert test[0] == "CMD", f"{service}: healthcheck {test}"
        argv = [self.path(self.address(part, service, inside=True), service) for part in test[1:]]
        assert argv[0] == "python", f"{service}: healthcheck runs {argv[0]}"
        return [sys.executable, *argv[1:]]

    def healthy(self, service: str) -> bool:
        argv = self.healthcheck_argv(service)
        assert argv is not None
        timeout = duration_s(self.spec["services"][service]["healthcheck"].get("timeout", "30s"))
        try:
            result = subprocess.run(
                argv,
                env=self.containers[service].env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.last_check[service] = f"timed out after {timeout} s"
            return False
        self.last_check[service] = (
            f"status {result.returncode}: {(result.stdout + result.stderr).decode()[-500:]}"
        )
        return result.returncode == 0

    def healthy_within_s(self, service: str) -> float:
        """How long compose waits before it calls ``service`` unhealthy (its defaults: 0 s, 30 s, 3),
        at least HEALTHY_WITHIN_S."""
        check = self.spec["services"][service].get("healthcheck", {})
        start = duration_s(check.get("start_period", "0s"))
        compose = start + duration_s(check.get("interval", "30s")) * int(check.get("retries", 3))
        return max(compose, HEALTHY_WITHIN_S)

    def why_unhealthy(self, service: str) -> str:
        """What the health check's target answers, for the failure message."""
        argv = self.healthcheck_argv(service)
        target = argv[-1] if argv else ""
        checked = f"; the health check's last run: {self.last_check.get(service, 'none')}"
        if not target.startswith("http"):
            return f" ({target}{checked})"
        try:
            response = requests.get(target, timeout=5)
        except requests.RequestException as exc:
            return f" ({target}: {type(exc).__name__}{checked})"
        return f" ({target}: {response.status_code} {response.text[:500]}{checked})"

    def up(self) -> list[str]:
        """Start every service once its dependencies are satisfied; the order they started in."""
        waiting = ours(self.spec)
        completed: set[str] = set()
        healthy: set[str] = set()
        running: list[str] = []
        order: list[str] = []

        def satisfied(dependency: str, condition: str) -> bool:
            if dependency in INFRA:
                return True  # the test's own Redis, databases and SMTP server are up
            return {
                "service_completed_successfully": dependency in completed,
                "service_healthy": dependency in healthy,
                "service_started": dependency in order,
            }[condition]

        next_check: dict[str, float] = {}
        deadline = time.monotonic() + MIGRATE_WITHIN_S + sum(self.healthy_within_s(n) for n in waiting)
        while waiting or running:
            for name in list(waiting):
                depends = self.spec["services"][name].get("depends_on", {})
                if all(satisfied(dep, cond["condition"]) for dep, cond in depends.items()):
                    self.containers[name] = self.container(name)
                    self.containers[name].start()
                    waiting.remove(name)
                    running.append(name)
                    order.append(name)
            for name in list(running):
                box = self.containers[name]
                assert box.process is not None
                one_shot = self.healthcheck_argv(name) is None
                code = box.process.poll()
                if one_shot:
                    if code == 0:
                        completed.add(name)
                        running.remove(name)
                    elif code is not None:
                        pytest.fail(f"{name} exited with status {code}\n{box.tail()}")
                    elif time.monotonic() - box.started_at > MIGRATE_WITHIN_S:
                        pytest.fail(f"{name} did not finish within {MIGRATE_WITHIN_S} s\n{box.tail()}")
                elif code is not None:
                    pytest.fail(f"{name} exited with status {code} before it was healthy\n{box.tail()}")
                elif time.monotonic() < next_check.get(name, 0.0):
                    continue
                elif self.healthy(name):
                    healthy.add(name)
                    running.remove(name)
                elif time.monotonic() - box.started_at > self.healthy_within_s(name):
                    pytest.fail(
                        f"{name}'s health check did not pass within {self.healthy_within_s(name)} s"
                        f"{self.why_unhealthy(name)}\n{box.tail()}"
                    )
                else:
                    next_check[name] = time.monotonic() + CHECK_EVERY_S
            if time.monotonic() > deadline:
                pytest.fail(f"compose never got going: waiting for {waiting}, unhealthy {running}")
            if waiting or running:
                time.sleep(0.3)
        return order

    def stop(self, name: str) -> int | None:
        """``docker compose stop``: SIGTERM to the main process, SIGKILL after the grace period."""
        box = self.containers[name]
        assert box.process is not None
        grace = duration_s(self.spec["services"][name].get("stop_grace_period", "10s"))
        if box.process.poll() is None:
            box.process.send_signal(signal.SIGTERM)
        try:
            return box.process.wait(grace)
        except subprocess.TimeoutExpired:
            box.kill()
            return None

    def run(self, service: str, *command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm <service> <command…>``."""
        box = self.container(service, list(command))
        return subprocess.run(
            box.argv,
            env=box.env,
            cwd=REPO,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


# ---- the test's own infrastructure ---------------------------------------------------


def _postgres_answers(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture
def postgres_databases(databases: Databases, tmp_path: Path) -> Iterator[Databases]:
    """PostgreSQL databases when there is a PostgreSQL (PC_TEST_DATABASE_URL, else the CI
    machine's at 127.0.0.1:5432, which the embedded-defaults run has too); SQLite otherwise."""
    if databases.server_url is not None or not _postgres_answers(LOCAL_POSTGRES):
        yield databases
        return
    own = Databases(tmp_path / "db")
    own.server_url = LOCAL_POSTGRES
    try:
        yield own
    finally:
        own.drop_all()


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


# ---- the test ----------------------------------------------------------------------


def test_the_image_runs_providerctl_which_is_services_cli() -> None:
    assert image_entrypoint() == ["providerctl"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["providerctl"] == "services.cli:main"


def test_compose_services_start_as_written_are_healthy_work_and_stop_cleanly(
    tmp_path: Path,
    postgres_databases: Databases,
    redis_url: str,
    redis_prefix: str,
    inbox: SmtpInbox,
) -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    variables = env_example()
    database_urls = {
        f"{svc.upper()}_DATABASE_URL": postgres_databases.new(svc) for svc in ("auth", "notify", "portal")
    }
    backend = "PostgreSQL" if postgres_databases.server_url else "SQLite"
    secret_values = {**variables, **database_urls, "NOTIFY_SMTP_URL": inbox.url}
    for variable in (s["environment"] for s in spec["secrets"].values()):
        assert variable in secret_values, f"no value for the secret {variable}"
        assert "@postgres:" not in secret_values[variable] and "mailpit" not in secret_values[variable]
    stack = ComposeHere(spec, tmp_path, redis_url, redis_prefix, secret_values, variables)
    try:
        began = time.monotonic()
        order = stack.up()
        up_s = time.monotonic() - began
        _works_end_to_end(stack, inbox)
        stopped, stop_s = {}, {}
        for name in reversed([n for n in order if stack.healthcheck_argv(n) is not None]):
            began = time.monotonic()
            stopped[name] = stack.stop(name)
            stop_s[name] = round(time.monotonic() - began, 1)
        tails = "\n".join(stack.containers[n].tail() for n, code in stopped.items() if code != 0)
        assert all(code == 0 for code in stopped.values()), f"exit statuses after SIGTERM: {stopped}\n{tails}"
        print(
            f"\ncompose services on {backend}, started in order {order}, all healthy after {up_s:.0f} s;"
            f" exit statuses after SIGTERM: {stopped}, in seconds: {stop_s}"
        )
    finally:
        for box in stack.containers.values():
            box.kill()
        client = connect(redis_url)
        for key in client.scan_iter(match=redis_prefix + "*", count=500):
            client.delete(key)


def _works_end_to_end(stack: ComposeHere, inbox: SmtpInbox) -> None:
    auth_env, portal_env = stack.containers["auth-web"].env, stack.containers["portal-web"].env
    issuer, portal_url = auth_env["AUTH_ISSUER"], portal_env["PORTAL_URL"]
    assert portal_env["AUTH_ISSUER"] == issuer and auth_env["PORTAL_URL"] == portal_url

    # auth serves its discovery document for the issuer every container was given.
    discovery = requests.get(issuer + "/.well-known/openid-configuration", timeout=10)
    assert discovery.status_code == 200 and discovery.json()["issuer"] == issuer
    # The portal is ready: its database, Redis and auth's gRPC TokenService all answer.
    ready = requests.get(portal_url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "auth_grpc": "ok"}

    # An operator adds a practice and a user with the admin toolbox, as compose.yaml says.
    practice_id = random_id("p-")
    user = TestUser(
        user_id=random_id("u."),
        password=f"Lantern-{secrets.token_urlsafe(12)}-9",
        totp_secret=pyotp.random_base32(),
        practice_id=practice_id,
        email=f"{random_id('u')}@example.test",
        name="Casey Example",
        user_pk="",
    )
    for command, stdin in (
        (("practice", "add", "--practice-id", practice_id, "--name", "Compose Practice"), None),
        (
            (
                "auth", "user", "add", "--practice-id", practice_id, "--user-id", user.user_id,
                "--email", user.email, "--name", user.name, "--password-stdin",
                "--totp-secret", user.totp_secret, "--role", "admin",
            ),
            user.password + "\n",
        ),
    ):  # fmt: skip
        result = stack.run("admin", *command, stdin=stdin)
        assert result.returncode == 0, (command, result.stdout, result.stderr)

    # A browser signs in through the portal: OIDC at auth-web, tokens checked by auth-grpc.
    browser = requests.Session()
    dashboard = sign_in_through_portal(browser, portal_url, user)
    assert dashboard.status_code == 200 and dashboard.url.rstrip("/") == portal_url, dashboard.url

    # A recovery email: auth-web's outbox, auth-relay, notify-server, notify-worker, SMTP.
    forgot = follow(browser, browser.get(issuer + "/forgot-password", allow_redirects=False, timeout=10))
    assert forgot.status_code == 200, forgot.text[:300]
    sent = browser.post(
        forgot.url.split("?")[0],
        data={**_form(forgot.text), "user_id": user.user_id, "email": user.email},
        allow_redirects=False,
        timeout=30,
    )
    assert sent.status_code < 400, sent.text[:300]
    (mail,) = inbox.wait_for(to=user.email, timeout_s=60)
    assert mail.subject
