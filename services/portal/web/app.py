"""The portal's Flask app factory. Nothing connects at import or build time.

``create_app(settings)`` builds the real thing (adapters from
:mod:`services.portal.bootstrap`); tests pass fakes or their own real
adapters for any of the keyword arguments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
import requests
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, Response, g, jsonify, request
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from services.common import db, tracing, web
from services.common.maintenance import RETRY_AFTER_S, Maintenance
from services.common.redis_conn import Keys
from services.common.token_client import TokenServiceUnavailable, TokenVerifier
from services.common.web_sessions import RedisSessionInterface
from services.portal import bootstrap
from services.portal.permissions import Permission
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.settings import Settings
from services.portal.throttle import RedisWindowThrottle
from services.portal.tokens import RedisTokenStore, RefreshBusy
from services.portal.web import (
    accounts,
    activity,
    answers,
    api,
    applications,
    dashboard,
    filters,
    money_views,
    openapi,
    pages,
    plans,
    reports_views,
    resources_views,
    signin,
    staff_views,
    status_views,
    supplies_views,
    support_views,
)
from services.portal.web.actors import page_actor
from services.portal.web.context import EXTENSION, Portal, current_session

log = logging.getLogger(__name__)

# Requests that must answer even in maintenance or while Redis is down.
ALWAYS_SERVED = frozenset({"healthz", "readyz", "static", "status.index", "status.as_json"})
# How long the portal waits for auth's HTTP endpoints (discovery, token, JWKS).
AUTH_HTTP_TIMEOUT_S = 5.0


class TracedOAuth2Session(OAuth2Session):
    """Authlib's HTTP client for auth (discovery, JWKS, the token endpoint), sending the
    current request's ``X-Request-Id`` and ``traceparent`` on every call, as the gRPC
    channels do (services/common/tracing.py): auth's log line for the token POST of a
    sign-in carries the browser request's id. Authlib makes a new session per call."""

    def request(self, method, url, withhold_token=False, auth=None, **kwargs):  # type: ignore[no-untyped-def]
        trace_headers = tracing.outgoing_headers()
        if trace_headers:
            kwargs["headers"] = {**trace_headers, **(kwargs.get("headers") or {})}
        return super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)


class TracedOAuth2App(FlaskOAuth2App):
    client_cls = TracedOAuth2Session


def create_app(
    settings: Settings,
    *,
    verifier: TokenVerifier | None = None,
    redis_client: redis.Redis | None = None,
    engine: Engine | None = None,
    oidc_metadata: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """Build the portal's web app.

    ``oidc_metadata`` replaces auth's discovery document (otherwise fetched
    from ``AUTH_ISSUER/.well-known/openid-configuration`` on first sign-in);
    ``clock`` drives session time-outs and the refresh decision.
    """
    if verifier is None:
        verifier = bootstrap.token_verifier(settings)
    if redis_client is None:
        redis_client = bootstrap.redis_client(settings)
    if engine is None:
        engine = bootstrap.engine(settings)
    keys = Keys(settings.redis_key_prefix, "portal")

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=1024 * 1024,
        PREFERRED_URL_SCHEME="https" if settings.tls else "http",
    )
    sessions = RedisSessionInterface(
        lambda: redis_client,
        keys,
        settings.session_cookie_name,
        idle_timeout_s=settings.session_idle_s,
        absolute_timeout_s=settings.session_max_s,
        secure=settings.tls,
        clock=clock,
        unavailable=pages.unavailable,
    )
    app.session_interface = sessions

    oauth = OAuth(app)
    client_kwargs = {
        "scope": "openid profile email",
        "code_challenge_method": "S256",
        "token_endpoint_auth_method": "client_secret_basic",
        "default_timeout": AUTH_HTTP_TIMEOUT_S,
    }
    if oidc_metadata is not None:
        oidc = oauth.register(
            "auth",
            client_cls=TracedOAuth2App,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            client_kwargs=client_kwargs,
            **dict(oidc_metadata),
        )
    else:
        oidc = oauth.register(
            "auth",
            client_cls=TracedOAuth2App,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            client_kwargs=client_kwargs,
            server_metadata_url=settings.discovery_url,
        )

    session_factory = db.session_factory(engine)
    app.extensions[EXTENSION] = Portal(
        settings=settings,
        verifier=verifier,
        token_store=RedisTokenStore(redis_client, keys),
        oidc=oidc,
        db=session_factory,
        sessions=sessions,
        clock=clock,
        services=Services.build(
            Deps(
                session_factory,
                clock,
                lookup_throttle=RedisWindowThrottle(
                    redis_client, keys, limit=settings.lookup_limit, window_s=settings.lookup_window_s
                ),
            )
        ),
    )

    web.install(
        app,
        service="portal",
        readiness_checks={
            "database": lambda: db.ping(engine),
            "redis": lambda: _ping(redis_client),
            "auth_grpc": verifier.check_ready,
        },
        tls=settings.tls,
        trusted_proxies=settings.trusted_proxies,
    )
    maintenance = Maintenance(redis_client, settings.redis_key_prefix)

    @app.before_request
    def _maintenance() -> Response | None:
        if request.endpoint in ALWAYS_SERVED:
            return None
        state = maintenance.state()
        if not state.on:
            return None
        if answers.is_api():
            return _json_unavailable("maintenance", state.message or "Down for maintenance.", RETRY_AFTER_S)
        return pages.maintenance(state.message)

    @app.before_request
    def _sessions_available() -> Response | None:
        if request.endpoint in ALWAYS_SERVED or request.blueprint in signin.SELF_AUTHENTICATING:
            return None
        return pages.unavailable() if current_session().unavailable else None

    app.before_request(signin.require_sign_in)

    @app.context_processor
    def _template_helpers() -> dict[str, Any]:
        helpers: dict[str, Any] = {"csrf_token": web.csrf_token, "Permission": Permission}
        if g.get("user") is not None:
            helpers["actor"] = page_actor()
        return helpers

    filters.install(app)
    answers.install(app)

    for unavailable in (
        TokenServiceUnavailable,
        redis.RedisError,
        requests.RequestException,
        RefreshBusy,
        OperationalError,
    ):
        app.register_error_handler(unavailable, _unavailable)

    for blueprint in (
        signin.bp,
        dashboard.bp,
        accounts.bp,
        applications.bp,
        plans.bp,
        activity.bp,
        money_views.bp,
        api.bp,
        openapi.bp,
        staff_views.bp,
        resources_views.bp,
        status_views.bp,
        supplies_views.bp,
        reports_views.bp,
        support_views.bp,
    ):
        app.register_blueprint(blueprint)
    return app


def _ping(client: redis.Redis) -> None:
    client.ping()


def _json_unavailable(error: str, message: str, retry_after_s: int) -> Response:
    response = jsonify(error=error, message=message)
    response.status_code = 503
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def _unavailable(exc: Exception) -> Response:
    log.warning("dependency unavailable", extra={"reason": f"{type(exc).__name__}: {exc}"[:200]})
    if answers.is_api():
        return _json_unavailable(
            "unavailable", "Temporarily unavailable, try again shortly.", pages.UNAVAILABLE_RETRY_AFTER_S
        )
    return pages.unavailable()
