"""Server-side browser sessions in Redis, with idle and absolute time-outs.

The cookie carries only a random id (256 bits); the data lives in Redis under
the hash of that id, so a stolen Redis dump holds no usable cookie. Sessions
are rotated at sign-in (:meth:`ServerSession.regenerate`) against fixation, and
end after ``idle_timeout_s`` without a request or ``absolute_timeout_s`` after
they began (HIPAA automatic logoff).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from services.common.redis_conn import Keys


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    """A dict of session data plus its id and timing; changes mark it modified."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        sid: str | None = None,
        created: float | None = None,
        *,
        unavailable: bool = False,
        expired: bool = False,
    ) -> None:
        def on_update(_self: CallbackDict) -> None:  # type: ignore[type-arg]
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.created = created
        self.modified = False
        self.new = sid is None
        self.unavailable = unavailable
        self.expired = expired
        self.old_sid: str | None = None
        self.destroyed = False

    def regenerate(self) -> None:
        """Give the session a new id (at sign-in), keeping its data; the old id dies."""
        if self.sid is not None:
            self.old_sid = self.sid
        self.sid = None
        self.created = None
        self.modified = True

    def destroy(self) -> None:
        """End the session: its data is deleted and the cookie cleared."""
        self.clear()
        self.destroyed = True
        self.modified = True


class RedisSessionInterface(SessionInterface):
    def __init__(
        self,
        client_factory: Callable[[], redis.Redis],
        keys: Keys,
        cookie_name: str,
        *,
        idle_timeout_s: int,
        absolute_timeout_s: int,
        secure: bool,
        clock: Callable[[], float] = time.time,
        unavailable: Callable[[], Response] | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._keys = keys
        self.cookie_name = cookie_name
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self.secure = secure
        self.clock = clock
        self._unavailable = unavailable

    def _key(self, sid: str) -> str:
        return self._keys("session", hashlib.sha256(sid.encode()).hexdigest())

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.cookie_name)
        if not sid or len(sid) > 128:
            return ServerSession()
        try:
            raw = self._client_factory().get(self._key(sid))
        except redis.RedisError:
            return ServerSession(unavailable=True)
        if raw is None:
            return ServerSession(expired=True)
        stored = json.loads(raw)
        now = self.clock()
        if now - stored["created"] > self.absolute_timeout_s or now - stored["seen"] > self.idle_timeout_s:
            try:
                self._client_factory().delete(self._key(sid))
            except redis.RedisError:
                return ServerSession(unavailable=True)
            return ServerSession(expired=True)
        session = ServerSession(stored["data"], sid=sid, created=stored["created"])
        session.seen = stored["seen"]  # type: ignore[attr-defined]
        return session

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        if session.unavailable:
            return
        try:
            self._save(session, response)
        except redis.RedisError:
            # Redis went away after the page was built: the page (often a redirect that
            # assumes the session was saved) must not go out; answer 503, never a 500.
            from services.common.web import unavailable_page

            replacement = self._unavailable() if self._unavailable else unavailable_page()
            response.status_code = replacement.status_code
            response.set_data(replacement.get_data())
            response.mimetype = replacement.mimetype
            response.headers.pop("Location", None)
            response.headers["Retry-After"] = replacement.headers["Retry-After"]

    def _save(self, session: ServerSession, response: Response) -> None:
        client = self._client_factory()
        cookie_kwargs = {
            "httponly": True,
            "secure": self.secure,
            "samesite": "Lax",
            "path": "/",
        }
        if session.destroyed:
            if session.sid:
                client.delete(self._key(session.sid))
            response.delete_cookie(self.cookie_name, **cookie_kwargs)  # type: ignore[arg-type]
            return
        if session.old_sid:
            client.delete(self._key(session.old_sid))
        if not session and session.sid is None:
            if session.expired:
                response.delete_cookie(self.cookie_name, **cookie_kwargs)  # type: ignore[arg-type]
            return
        now = self.clock()
        if session.sid is None:
            session.sid = secrets.token_urlsafe(32)
            session.created = now
        assert session.created is not None
        remaining = int(self.absolute_timeout_s - (now - session.created))
        ttl = max(1, min(self.idle_timeout_s, remaining))
        payload = json.dumps({"created": session.created, "seen": now, "data": dict(session)})
        client.set(self._key(session.sid), payload, ex=ttl)
        response.set_cookie(
            self.cookie_name,
            session.sid,
            max_age=max(1, remaining),
            **cookie_kwargs,  # type: ignore[arg-type]
        )

    def seconds_left(self, session: ServerSession) -> int | None:
        """Seconds until the idle or absolute limit ends this session, for the warning page."""
        if session.created is None:
            return None
        now = self.clock()
        return int(min(self.idle_timeout_s, self.absolute_timeout_s - (now - session.created)))
