"""auth's gRPC server: ``TokenService.ValidateToken``.

Only here is the gRPC context. The answer combines the signature/claims
check (tokens.py) with the server-side state local JWKS validation cannot
see (sessions.py: revoked tokens, ended sessions, suspended users).
"""

from __future__ import annotations

import logging
import threading
import time

import grpc
import redis

from providercenter.auth.v1 import token_pb2, token_pb2_grpc
from services.auth.bootstrap import Container
from services.auth.store.models import Practice, User
from services.auth.tokens import TokenInvalid

log = logging.getLogger(__name__)

PROFILE_CACHE_S = 60.0


class TokenServicer(token_pb2_grpc.TokenServiceServicer):
    def __init__(self, container: Container) -> None:
        self.c = container
        self._profiles: dict[str, tuple[float, str, str]] = {}
        self._lock = threading.Lock()

    def ValidateToken(  # noqa: N802 - gRPC method name
        self, request: token_pb2.ValidateTokenRequest, context: grpc.ServicerContext
    ) -> token_pb2.ValidateTokenResponse:
        if not request.audience:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audience is required")
        if len(request.token) > 8192:
            return _inactive("MALFORMED")
        try:
            claims = self.c.access_tokens.verify(request.token, request.audience)
        except TokenInvalid as exc:
            return _inactive(exc.reason.value)
        is_user = bool(claims.sid)
        try:
            state = self.c.revocation.check(
                jti=claims.jti, sid=claims.sid, user_pk=claims.sub if is_user else None
            )
        except redis.RedisError:
            # Cannot tell whether it was revoked: fail closed, and say so.
            context.abort(grpc.StatusCode.UNAVAILABLE, "revocation state unavailable")
        if state is not None:
            return _inactive(state)
        name, practice_name = self._profile(claims.sub, claims.practice_id) if is_user else ("", "")
        return token_pb2.ValidateTokenResponse(
            active=True,
            sub=claims.sub,
            practice_id=claims.practice_id,
            roles=claims.roles,
            scope=claims.scope,
            sid=claims.sid,
            exp=claims.exp,
            amr=claims.amr,
            client_id=claims.client_id,
            jti=claims.jti,
            acr=claims.acr,
            auth_time=claims.auth_time,
            name=name,
            practice_name=practice_name,
        )

    def _profile(self, user_pk: str, practice_id: str) -> tuple[str, str]:
        """The display name and practice name, cached briefly: they are for greeting, not for access."""
        now = time.monotonic()
        with self._lock:
            cached = self._profiles.get(user_pk)
            if cached and now - cached[0] < PROFILE_CACHE_S:
                return cached[1], cached[2]
        with self.c.db() as db:
            user = db.get(User, user_pk)
            practice = db.get(Practice, practice_id) if practice_id else None
            profile = (user.name if user else "", practice.name if practice else "")
        with self._lock:
            if len(self._profiles) > 10_000:
                self._profiles.clear()
            self._profiles[user_pk] = (now, *profile)
        return profile


def _inactive(reason: str) -> token_pb2.ValidateTokenResponse:
    return token_pb2.ValidateTokenResponse(active=False, reason=token_pb2.InactiveReason.Value(reason))


def build(container: Container, address: str):  # type: ignore[no-untyped-def]
    from services.common.grpc_util import build_server

    servicer = TokenServicer(container)
    return build_server(
        [lambda server: token_pb2_grpc.add_TokenServiceServicer_to_server(servicer, server)],
        ["providercenter.auth.v1.TokenService"],
        address,
    )
