"""The public status page: maintenance state and each service's health, no sign-in needed.

Auth's sign-in page can link here (``PORTAL_URL/status``; ``/status.json`` for
machines). Each check has a short deadline, so the page answers even when a
dependency hangs: the portal's own readiness checks (database, Redis, auth's
gRPC), auth's ``/healthz`` over HTTP, notify's standard gRPC health service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from flask import Blueprint, Response, current_app, jsonify, render_template

from services.common import tracing
from services.common.grpc_util import check_health
from services.common.maintenance import Maintenance
from services.portal.web.context import portal

bp = Blueprint("status", __name__)
CHECK_TIMEOUT_S = 1.5
CACHE_S = 5.0
_cache: dict[int, tuple[float, dict]] = {}


@dataclass(frozen=True)
class Component:
    name: str
    ok: bool
    detail: str


def _portal() -> Component:
    answer = current_app.view_functions["readyz"]()
    checks = answer.get_json().get("checks", {})
    failing = [f"{name} {value}" for name, value in checks.items() if value != "ok"]
    return Component("Provider portal", not failing, "; ".join(failing) or "Operational")


def _auth() -> Component:
    try:
        ok = (
            requests.get(
                f"{portal().settings.auth_issuer}/healthz",
                headers=tracing.outgoing_headers(),
                timeout=CHECK_TIMEOUT_S,
            ).status_code
            == 200
        )
    except requests.RequestException:
        ok = False
    return Component("Sign-in (auth)", ok, "Operational" if ok else "Not responding")


def _notify() -> Component:
    ok = check_health(portal().settings.notify_grpc_addr, timeout_s=CHECK_TIMEOUT_S)
    return Component("Email notifications", ok, "Operational" if ok else "Not responding")


def snapshot() -> dict:
    """At most one round of checks per app every few seconds: a public page must be cheap."""
    key = id(current_app)
    cached = _cache.get(key)
    now = time.monotonic()
    if cached and now - cached[0] < CACHE_S:
        return cached[1]
    p = portal()
    state = Maintenance(p.token_store._client, p.settings.redis_key_prefix).state()  # noqa: SLF001
    components = [_portal(), _auth(), _notify()]
    result = {
        "maintenance": {"on": state.on, "message": state.message},
        "components": [c.__dict__ for c in components],
        "status": "maintenance"
        if state.on
        else ("operational" if all(c.ok for c in components) else "degraded"),
    }
    _cache[key] = (now, result)
    return result


@bp.get("/status")
def index() -> Response:
    data = snapshot()
    response = Response(render_template("status.html", data=data), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/status.json")
def as_json() -> Response:
    response = jsonify(snapshot())
    response.headers["Cache-Control"] = "no-store"
    return response
