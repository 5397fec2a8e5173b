"""Real auth web processes (``python -m services.cli auth web``: gunicorn) for the tests
that need several of them sharing one Redis and one database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.integration.auth.signin.support import CSRF, REPO, cli_env, wait_until
from tests.support.infra import free_port


@dataclass
class AuthWeb:
    url: str
    log_path: Path
    popen: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def start_auth_web(env: dict[str, str], log_dir: Path, name: str, workers: int) -> AuthWeb:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process_env = cli_env(
        {
            **env,
            "AUTH_HTTP_BIND": f"127.0.0.1:{port}",
            "AUTH_ISSUER": url,
            "AUTH_WEB_WORKERS": str(workers),
        }
    )
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "auth", "web"],
            cwd=REPO,
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return AuthWeb(url, log_path, popen)


class PortTaken(Exception):
    """Another process took the free port between our probe and gunicorn's bind."""


def wait_serving(web: AuthWeb, timeout_s: float = 90) -> None:
    def up() -> bool:
        if not web.alive():
            log = web.log()
            if "Address already in use" in log or "Connection in use" in log:
                raise PortTaken(web.url)
            raise AssertionError(f"auth web exited:\n{log[-3000:]}")
        try:
            return requests.get(web.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, timeout_s, f"auth web at {web.url}", interval_s=0.1)


def start_serving(env: dict[str, str], log_dir: Path, names: list[str], workers: int) -> list[AuthWeb]:
    """Start one auth web process per name (in parallel) and wait until each serves."""
    webs = [start_auth_web(env, log_dir, name, workers) for name in names]
    try:
        for index, name in enumerate(names):
            for attempt in range(3):
                try:
                    wait_serving(webs[index])
                    break
                except PortTaken:
                    webs[index].stop()
                    if attempt == 2:
                        raise
                    webs[index] = start_auth_web(env, log_dir, f"{name}-retry{attempt}", workers)
    except BaseException:
        for web in webs:
            web.stop()
        raise
    return webs


class HttpBrowser:
    """A browser with its own cookies speaking HTTP to one auth process."""

    def __init__(self, base: str, *, user_agent: str = "pytest-http/1.0") -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers["User-Agent"] = user_agent

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=30)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(self.base + path, data=data, allow_redirects=False, timeout=30)

    def token(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:500])
        match = CSRF.search(page.text)
        assert match, page.text[:500]
        return match.group(1)

    def form(self, path: str, **data: str) -> requests.Response:
        return self.post(path, {"csrf_token": self.token(path), **data})


def locations(text: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', text)
