"""The auth service's Flask app factory."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app, g, request, session

from services.auth.bootstrap import Container
from services.auth.oauth.server import build_server
from services.common import web
from services.common.db import ping
from services.common.web_sessions import RedisSessionInterface, ServerSession

SESSION_COOKIE = "pc_auth_session"


def create_app(container: Container) -> Flask:
    settings = container.settings
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        MAX_FORM_PARTS=200,
    )
    app.extensions["container"] = container
    cookie = f"__Host-{SESSION_COOKIE}" if settings.tls else SESSION_COOKIE
    app.session_interface = RedisSessionInterface(
        lambda: container.redis,
        container.keys,
        cookie,
        idle_timeout_s=settings.session_idle_s,
        absolute_timeout_s=settings.session_max_s,
        secure=settings.tls,
    )
    web.install(
        app,
        service="auth",
        readiness_checks={
            "database": lambda: ping(container.engine),
            "redis": lambda: container.redis.ping() and None,
        },
        tls=settings.tls,
        trusted_proxies=settings.trusted_proxies,
    )
    app.extensions["oauth_server"] = build_server(app, container)

    @app.before_request
    def _guards():  # type: ignore[no-untyped-def]
        if request.endpoint in {"healthz", "readyz", "static"}:
            return None
        state = container.maintenance.state()
        if state.on:
            response = web.error_page(
                503,
                "Down for maintenance",
                state.message or "Provider Center is down for maintenance. Please try again shortly.",
            )
            response.headers["Retry-After"] = "300"
            return response
        if cast(ServerSession, session).unavailable and request.endpoint not in _STATELESS:
            return web.unavailable_page()
        g.origin_ip = web.client_ip(settings.trusted_proxies)
        return None

    app.jinja_env.globals["csrf_token"] = web.csrf_token
    app.jinja_env.globals["support_email"] = settings.support_email
    app.jinja_env.globals["support_phone"] = settings.support_phone
    app.jinja_env.globals["password_min_length"] = settings.password_min_length
    # The portal's public status page: maintenance state and each service's health.
    app.jinja_env.globals["status_url"] = f"{settings.portal_url}/status"

    from services.auth.web import account_views, oauth_views, recovery_views, signin_views

    app.register_blueprint(signin_views.bp)
    app.register_blueprint(account_views.bp)
    app.register_blueprint(recovery_views.bp)
    app.register_blueprint(oauth_views.bp)
    return app


# Endpoints that work without the browser session (token, discovery, JWKS…).
_STATELESS = {
    "oauth.discovery",
    "oauth.jwks",
    "oauth.token",
    "oauth.userinfo",
    "oauth.introspect",
    "oauth.revoke",
}


def container() -> Container:
    return cast(Container, current_app.extensions["container"])
