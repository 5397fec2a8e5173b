"""What the portal's views share, hung on the Flask app by the factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app, session
from sqlalchemy.orm import Session, sessionmaker

from services.common.token_client import TokenVerifier
from services.common.web_sessions import RedisSessionInterface, ServerSession
from services.portal.service_layer import Services
from services.portal.settings import Settings
from services.portal.tokens import RedisTokenStore

EXTENSION = "services.portal"


@dataclass(frozen=True)
class Portal:
    settings: Settings
    verifier: TokenVerifier
    token_store: RedisTokenStore
    oidc: Any  # authlib's FlaskOAuth2App for auth (authlib ships no type hints)
    db: sessionmaker[Session]
    sessions: RedisSessionInterface
    clock: Callable[[], float]
    services: Services

    def session_ttl_s(self, server_session: ServerSession) -> int:
        """Seconds the current session may still live (idle or absolute, whichever is first)."""
        left = self.sessions.seconds_left(server_session)
        if left is None:  # a session being created (sign-in) starts with the full idle time
            return min(self.settings.session_idle_s, self.settings.session_max_s)
        return max(1, left)


def portal() -> Portal:
    return cast(Portal, current_app.extensions[EXTENSION])


def current_session() -> ServerSession:
    """Flask's ``session``, typed as the server-side session it always is here."""
    return cast(ServerSession, session)
