"""What every browser-facing Flask app here gets: security headers, CSRF,
friendly error pages, the Redis-down page, the health endpoints, ``/metrics``,
and a trace per request (``X-Request-Id`` and W3C ``traceparent`` accepted
or made, the id echoed back, one JSON log line per request).

Only code under a service's ``web/`` package touches ``flask.request``; this
module is the shared part of those.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, jsonify, render_template_string, request, session
from werkzeug.exceptions import HTTPException

from services.common import metrics, tracing

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# Minimal, self-contained pages for errors, so an error never depends on the
# service's templates (which might be what failed).
_ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1>{{ title }}</h1>
<p role="alert">{{ message }}</p>
{% if link %}<p><a href="{{ link }}">{{ link_text }}</a></p>{% endif %}
<p>Reference: {{ request_id }}</p>
</main></body></html>"""

Check = Callable[[], None]


class CsrfError(Exception):
    """A form arrived without the token of the session that rendered it."""


def csrf_token() -> str:
    """The session's CSRF token, made on first use; forms put it in ``csrf_token``."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfError


def error_page(
    status: int, title: str, message: str, *, link: str | None = None, link_text: str = ""
) -> Response:
    body = render_template_string(
        _ERROR_PAGE,
        title=title,
        message=message,
        link=link,
        link_text=link_text,
        request_id=getattr(g, "request_id", ""),
    )
    return Response(body, status=status, mimetype="text/html")


def wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def install(
    app: Flask,
    *,
    service: str,
    readiness_checks: dict[str, Check],
    tls: bool,
    trusted_proxies: int = 0,
) -> None:
    """Wire headers, request ids and traces, error handling, ``/healthz`` + ``/readyz``
    and ``/metrics`` into ``app``.

    ``/metrics`` is refused (404) to requests that came through a trusted proxy
    (``trusted_proxies`` > 0 and an ``X-Forwarded-For`` header): behind an
    ingress it is for the cluster's Prometheus, which scrapes the pod directly.
    """

    def _metrics_allowed(environ: dict[str, Any]) -> bool:
        return trusted_proxies <= 0 or not environ.get("HTTP_X_FORWARDED_FOR")

    app.wsgi_app = metrics.WsgiMetrics(app.wsgi_app, allowed=_metrics_allowed)  # type: ignore[method-assign]

    @app.before_request
    def _start() -> None:
        trace = tracing.new_trace(request.headers.get("X-Request-Id"), request.headers.get("traceparent"))
        g.trace_token = tracing.begin(trace)
        g.request_id = trace.request_id
        g.started = time.perf_counter()
        request.environ[metrics.ROUTE_KEY] = request.url_rule.rule if request.url_rule else None

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        tracing.end(g.pop("trace_token", None))

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if tls:
            response.headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if "Cache-Control" not in response.headers and response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        started = getattr(g, "started", None)
        if started is not None and request.endpoint not in {"healthz", "readyz"}:
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": request.url_rule.rule if request.url_rule else None,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": g.request_id,
                    "outcome": _outcome(response.status_code),
                },
            )
        return response

    @app.errorhandler(CsrfError)
    def _csrf(_exc: CsrfError) -> Response:
        return error_page(
            400,
            "This form has expired",
            "The page was open too long or was submitted twice. Please start again.",
            link="/",
            link_text="Start again",
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        if wants_json():
            response = jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description)
            response.status_code = exc.code or 500
            return response
        return error_page(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Never a stack trace to the user; the log has it, with the request id.
        log.exception("unhandled error", extra={"request_id": getattr(g, "request_id", "")})
        if wants_json():
            response = jsonify(error="server_error", message="Something went wrong on our side.")
            response.status_code = 500
            return response
        return error_page(
            500,
            "Something went wrong",
            "Something went wrong on our side. Please try again; if it keeps happening, "
            "contact support with the reference below.",
        )

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz() -> Response:
        results: dict[str, str] = {}
        for name, check in readiness_checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                results[name] = f"failing: {type(exc).__name__}"
        ready = all(value == "ok" for value in results.values())
        response = jsonify(status="ready" if ready else "not_ready", checks=results)
        response.status_code = 200 if ready else 503
        return response


def _outcome(status: int) -> str:
    if status >= 500:
        return "error"
    if status >= 400:
        return "refused"
    return "ok"


def unavailable_page(retry_after_s: int = 60) -> Response:
    response = error_page(
        503,
        "Temporarily unavailable",
        "Sign-in is temporarily unavailable, try again in a few minutes.",
    )
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def client_ip(trusted_proxies: int) -> str:
    """The client's address: the connection's, or from ``X-Forwarded-For`` only
    when a count of trusted proxies in front of us is configured (each proxy
    appends the address it saw; we take the one our outermost proxy saw)."""
    if trusted_proxies > 0:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= trusted_proxies:
            return forwarded[-trusted_proxies][:64]
    return (request.remote_addr or "unknown")[:64]
