"""The peer OpenID Provider: panva's ``oidc-provider`` from ../shared/peers/oidc-provider.

The folder is read-only, so it is copied to a temporary directory, installed
there with ``npm ci`` and started on a free loopback port; it is stopped by its
process id at the end. ``PEER_OIDC_DIR`` points the benchmark at another folder.
Clients, secrets and the sign-in form are the ones its README describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from bench.client import basic_auth
from bench.load import process_cpu_s
from bench.util import free_port, pkce_pair

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "peers" / "oidc-provider"
CLIENT_ID = "peer-client"
CLIENT_SECRET = "peer-client-secret-0123456789abcdef"  # noqa: S105 - the peer's published test client
SERVICE_ID = "peer-service"
SERVICE_SECRET = "peer-service-secret-0123456789abcdef"  # noqa: S105 - the peer's published test client
REDIRECT_URI = "http://127.0.0.1:8765/cb"
RESOURCE = "urn:peer:api"
ACCOUNT = "alice"

_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class Peer:
    def __init__(self) -> None:
        self.source = Path(os.environ.get("PEER_OIDC_DIR") or DEFAULT_DIR)
        self.workdir: Path | None = None
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.version = "?"
        self.paths: dict[str, str] = {}

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_auth(self) -> str:
        return basic_auth(CLIENT_ID, CLIENT_SECRET)

    @property
    def service_auth(self) -> str:
        return basic_auth(SERVICE_ID, SERVICE_SECRET)

    def start(self) -> None:
        if not (self.source / "server.js").exists():
            raise RuntimeError(f"no peer at {self.source} (set PEER_OIDC_DIR)")
        self.workdir = Path(tempfile.mkdtemp(prefix="pc-bench-peer-"))
        shutil.copytree(
            self.source, self.workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("node_modules")
        )
        for path in [self.workdir, *self.workdir.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=self.workdir,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=300,
        )
        package = self.workdir / "node_modules" / "oidc-provider" / "package.json"
        self.version = json.loads(package.read_text())["version"]
        self.port = free_port()
        log = open(self.workdir / "peer.log", "ab")  # noqa: SIM115 - kept open for the child
        self.process = subprocess.Popen(
            ["node", "server.js"],
            cwd=self.workdir,
            env={**os.environ, "PEER_PORT": str(self.port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the peer exited: {(self.workdir / 'peer.log').read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                reply = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1)
                if reply.ok:
                    # The endpoints' paths, from its discovery document.
                    self.paths = {
                        name: urlsplit(url).path
                        for name, url in reply.json().items()
                        if name.endswith("_endpoint")
                    }
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the peer did not answer in 30 s")
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds so far of the peer's one Node process."""
        return process_cpu_s([self.process.pid]) if self.process is not None else 0.0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # --- its development sign-in (login form, then consent form) -------------------------------

    def browser(self) -> requests.Session:
        """A browser session signed in as the peer's account (first authorization)."""
        session = requests.Session()
        self.authorize(session)
        return session

    def authorize(self, session: requests.Session, *, jwt: bool = True) -> tuple[str, str]:
        """One authorization through the interaction forms; returns (code, PKCE verifier).

        ``prompt=consent`` each time: this package grants ``offline_access`` (a
        refresh token, which ours issues on every code exchange) only then.
        ``jwt`` asks for the JWT access tokens of ``resource=urn:peer:api``.
        """
        verifier, challenge = pkce_pair()
        params = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid offline_access api" if jwt else "openid offline_access",
            "prompt": "consent",
            "state": "bench",
            "nonce": "bench",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if jwt:
            params["resource"] = RESOURCE
        url = self.issuer + self.paths["authorization_endpoint"] + "?" + urlencode(params)
        reply = self._follow(session, session.get(url, allow_redirects=False, timeout=10))
        for _ in range(4):
            if reply.status_code != 200:
                break
            action = _FORM_ACTION.search(reply.text)
            if action is None:
                raise RuntimeError(f"peer interaction page without a form: {reply.text[:300]}")
            fields = dict(_HIDDEN.findall(reply.text))
            if fields.get("prompt") == "login":
                fields.update(login=ACCOUNT, password="any")  # noqa: S106 - devInteractions takes any
            reply = self._follow(session, session.post(action.group(1), data=fields, allow_redirects=False))
        location = reply.headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code")
        if not location.startswith(REDIRECT_URI) or not code:
            raise RuntimeError(
                f"peer authorization did not give a code: {reply.status_code} {location[:200]}"
            )
        return code[0], verifier

    def _follow(self, session: requests.Session, reply: requests.Response) -> requests.Response:
        while reply.status_code in (302, 303) and not reply.headers["Location"].startswith(REDIRECT_URI):
            reply = session.get(
                urljoin(reply.url, reply.headers["Location"]), allow_redirects=False, timeout=10
            )
        return reply

    def exchange(self, code: str, verifier: str) -> dict:
        reply = requests.post(
            self.issuer + self.paths["token_endpoint"],
            headers={"Authorization": self.client_auth},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()
