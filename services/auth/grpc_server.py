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

from providercenter.auth.v1 import token_pb2, token_pb2_grpc, user_admin_pb2, user_admin_pb2_grpc
from services.auth import metrics, staff_admin
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
        started = time.perf_counter()
        response: token_pb2.ValidateTokenResponse | None = None
        try:
            response = self._validate(request, context)
            return response
        finally:
            metrics.VALIDATE_LATENCY.observe(time.perf_counter() - started)
            if response is None:  # aborted: no audience, or the revocation state unavailable
                metrics.TOKENS_VALIDATED.labels("error", "").inc()
            elif response.active:
                metrics.TOKENS_VALIDATED.labels("true", "").inc()
            else:
                metrics.TOKENS_VALIDATED.labels("false", token_pb2.InactiveReason.Name(response.reason)).inc()

    def _validate(
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


_STATUS = {
    staff_admin.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    staff_admin.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    staff_admin.NotFound: grpc.StatusCode.NOT_FOUND,
    staff_admin.Invalid: grpc.StatusCode.INVALID_ARGUMENT,
    staff_admin.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    staff_admin.Precondition: grpc.StatusCode.FAILED_PRECONDITION,
}


def _staff(view: staff_admin.StaffView) -> user_admin_pb2.StaffUser:
    return user_admin_pb2.StaffUser(
        user_id=view.user_id,
        name=view.name,
        email=view.email,
        roles=view.roles,
        status=view.status,
        locked=view.locked,
        mfa_enrolled=view.mfa_enrolled,
        created_at=view.created_at,
        last_sign_in_at=view.last_sign_in_at,
    )


class UserAdminServicer(user_admin_pb2_grpc.UserAdminServiceServicer):
    """Every call: the actor from the bearer token in metadata, then the rule in staff_admin.py."""

    def __init__(self, container: Container) -> None:
        self.c = container

    def _admin(self, context: grpc.ServicerContext) -> staff_admin.StaffAdmin:
        metadata = dict(context.invocation_metadata())
        scheme, _, token = str(metadata.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "send the acting user's access token as 'authorization: Bearer …'",
            )
        try:
            actor = staff_admin.authenticate(self.c, token.strip(), (self.c.settings.portal_client_id,))
        except staff_admin.AdminError as exc:
            context.abort(_STATUS[type(exc)], str(exc))
        except redis.RedisError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "revocation state unavailable")
        return staff_admin.StaffAdmin(self.c, actor)

    def _call(self, context: grpc.ServicerContext, action):  # type: ignore[no-untyped-def]
        admin = self._admin(context)
        try:
            return action(admin)
        except staff_admin.AdminError as exc:
            context.abort(_STATUS[type(exc)], str(exc))
        except redis.RedisError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "auth's Redis is unavailable; try again shortly")

    def ListUsers(self, request, context):  # noqa: N802
        users, total = self._call(
            context, lambda a: a.list_users(request.query, request.limit, request.offset)
        )
        return user_admin_pb2.ListUsersResponse(users=[_staff(u) for u in users], total=total)

    def GetUser(self, request, context):  # noqa: N802
        return _staff(self._call(context, lambda a: a.get(request.user_id)))

    def InviteUser(self, request, context):  # noqa: N802
        return _staff(
            self._call(
                context, lambda a: a.invite(request.user_id, request.email, request.name, list(request.roles))
            )
        )

    def SetRoles(self, request, context):  # noqa: N802
        return _staff(self._call(context, lambda a: a.set_roles(request.user_id, list(request.roles))))

    def SuspendUser(self, request, context):  # noqa: N802
        return _staff(self._call(context, lambda a: a.suspend(request.user_id)))

    def ReactivateUser(self, request, context):  # noqa: N802
        return _staff(self._call(context, lambda a: a.reactivate(request.user_id)))

    def UnlockUser(self, request, context):  # noqa: N802
        return _staff(self._call(context, lambda a: a.unlock(request.user_id)))

    def ResetMfa(self, request, context):  # noqa: N802
        state, request_id, user = self._call(context, lambda a: a.reset_mfa(request.user_id))
        return user_admin_pb2.MfaResetResponse(state=state, request_id=request_id, user=_staff(user))

    def ApproveMfaReset(self, request, context):  # noqa: N802
        state, request_id, user = self._call(context, lambda a: a.approve_mfa_reset(request.request_id))
        return user_admin_pb2.MfaResetResponse(state=state, request_id=request_id, user=_staff(user))

    def ListMfaResetRequests(self, request, context):  # noqa: N802
        rows = self._call(context, lambda a: a.pending_resets())
        return user_admin_pb2.ListMfaResetRequestsResponse(
            requests=[
                user_admin_pb2.MfaResetRequest(request_id=r, user_id=u, requested_by=b, requested_at=t)
                for r, u, b, t in rows
            ]
        )

    def ListActivity(self, request, context):  # noqa: N802
        rows = self._call(context, lambda a: a.activity(request.user_id, request.limit))
        return user_admin_pb2.ListActivityResponse(
            events=[
                user_admin_pb2.ActivityEvent(
                    at=int(e.at.timestamp()),
                    event=e.event,
                    outcome=e.outcome,
                    reason=e.reason or "",
                    ip=e.ip or "",
                    user_agent=e.user_agent or "",
                )
                for e in rows
            ]
        )


def build(container: Container, address: str):  # type: ignore[no-untyped-def]
    from services.common.grpc_util import build_server

    token_servicer = TokenServicer(container)
    admin_servicer = UserAdminServicer(container)
    return build_server(
        [
            lambda server: token_pb2_grpc.add_TokenServiceServicer_to_server(token_servicer, server),
            lambda server: user_admin_pb2_grpc.add_UserAdminServiceServicer_to_server(admin_servicer, server),
        ],
        ["providercenter.auth.v1.TokenService", "providercenter.auth.v1.UserAdminService"],
        address,
    )
