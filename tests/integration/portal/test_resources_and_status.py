"""Resources (browse, search, download) for signed-in staff, and the public status page."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from services.common import tracing
from services.common.token_client import _fetch_jwks
from services.portal.web import status_views
from tests.integration.portal.test_sign_in_with_auth import Wired
from tests.integration.portal.test_staff_with_auth import signed_in
from tests.support.auth_factory import make_practice, make_user
from tests.support.infra import random_id

pytestmark = pytest.mark.integration


def test_resources_browse_search_download(wired: Wired) -> None:
    practice = make_practice(wired.auth, "Cedar Smiles")  # type: ignore[arg-type]
    client = signed_in(wired, make_user(wired.auth, practice, roles=["read_only"]))  # type: ignore[arg-type]
    page = client.get("/resources").get_data(as_text=True)
    assert "Training guides" in page and "Marketing material" in page
    found = client.get("/resources?q=refund").get_data(as_text=True)
    assert "Processing a charge and a refund" in found and "Waiting room poster" not in found
    only = client.get("/resources?category=marketing").get_data(as_text=True)
    assert "Waiting room poster" in only and "Promotional financing explained" not in only

    guide = client.get("/resources/promotional-financing/download")
    assert guide.status_code == 200 and guide.mimetype == "text/html"
    assert 'filename="promotional-financing.html"' in guide.headers["Content-Disposition"]
    assert "Deferred interest" in guide.get_data(as_text=True)
    poster = client.get("/resources/waiting-room-poster/download")
    assert poster.mimetype == "image/svg+xml" and "Cedar Smiles" in poster.get_data(as_text=True)
    assert client.get("/resources/nothing-here/download").status_code == 404


def test_resources_need_sign_in_and_status_does_not(wired: Wired) -> None:
    anonymous = wired.portal_app.test_client()
    assert anonymous.get("/resources").status_code == 302
    status = anonymous.get("/status")
    html = status.get_data(as_text=True)
    assert status.status_code == 200
    assert "Sign-in (auth)" in html and "Email notifications" in html
    data = anonymous.get("/status.json").get_json()
    states = {c["name"]: c["ok"] for c in data["components"]}
    # Auth is up in this fixture; notify is not (its address is never served): degraded.
    assert states["Sign-in (auth)"] is True and states["Provider portal"] is True
    assert states["Email notifications"] is False
    assert data["status"] == "degraded" and data["maintenance"]["on"] is False


class _Recorder(BaseHTTPRequestHandler):
    """An HTTP server that answers 200 and remembers each request's headers."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = b'{"keys": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_status_page_sends_its_request_id_to_auth(
    wired: Wired, recorder: tuple[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth's /healthz call carries the status request's id and trace, like every call onwards."""
    url, seen = recorder
    # The same portal, its auth address pointed at the recorder; and no status cached from before.
    redirected = dataclasses.replace(wired.ctx, settings=dataclasses.replace(wired.ctx.settings, auth_issuer=url))
    monkeypatch.setattr(status_views, "portal", lambda: redirected)
    monkeypatch.setattr(status_views, "_cache", {})
    request_id = random_id("rid-status-")
    trace_id = secrets.token_hex(16)
    answer = wired.portal_app.test_client().get(
        "/status.json",
        headers={"X-Request-Id": request_id, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert answer.status_code == 200
    (call,) = [h for h in seen if h["path"] == "/healthz"]
    assert call["x-request-id"] == request_id
    assert call["traceparent"].startswith(f"00-{trace_id}-")


def test_a_jwks_fetch_sends_the_current_trace(recorder: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = recorder
    request_id = random_id("rid-jwks-")
    with tracing.continued(request_id, None) as trace:
        assert _fetch_jwks(url + "/jwks.json", timeout_s=2) == {"keys": []}
    (call,) = seen
    assert call["x-request-id"] == request_id and call["traceparent"] == trace.traceparent
