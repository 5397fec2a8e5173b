"""``providerctl portal web`` as the supervisor and the container start it: gunicorn, real workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from services import migrate
from tests.support.infra import Databases, free_port

pytestmark = pytest.mark.integration


def test_portal_web_serves_health_and_logs_json(
    databases: Databases, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    database_url = databases.new("portal")
    env = {
        **os.environ,
        "PC_VAR_DIR": str(tmp_path),
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_HTTP_BIND": f"127.0.0.1:{port}",
        "PORTAL_URL": f"http://127.0.0.1:{port}",
        "PORTAL_WEB_WORKERS": "1",
        # Nothing listens here: auth is "down" for this test.
        "AUTH_ISSUER": f"http://127.0.0.1:{free_port()}",
        "AUTH_GRPC_ADDR": f"127.0.0.1:{free_port()}",
    }
    migrate.upgrade("portal", env)
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "portal", "web"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, stderr.read_text()[-2000:]
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, stderr.read_text()[-2000:]
            time.sleep(0.1)

        ready = requests.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["redis"] == "ok"
        assert checks["auth_grpc"].startswith("failing")

        first = requests.get(f"{base}/", allow_redirects=False, timeout=5)
        assert first.status_code == 302 and first.headers["Location"].startswith("/login")
        login = requests.get(f"{base}/login", allow_redirects=False, timeout=10)
        assert login.status_code == 503  # auth's discovery is unreachable
        assert "The portal is temporarily unavailable" in login.text
        assert requests.get(f"{base}/static/portal.css", timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)

    lines = [line for line in stderr.read_text().splitlines() if line.startswith("{")]
    requests_logged = [json.loads(line) for line in lines if '"msg": "request"' in line]
    assert any(entry.get("route") == "/login" and entry.get("status") == 503 for entry in requests_logged)
    assert all(entry["service"] == "portal" for entry in requests_logged)
