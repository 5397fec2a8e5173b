"""Staff administration through auth's ``UserAdminService`` (gRPC), on behalf of the signed-in user.

Auth owns identities and checks every call itself: the acting user's access
token rides in the ``authorization`` metadata and auth decides (admin role,
same practice; another practice's user is NOT_FOUND). The portal only asks,
with a deadline on every call, and turns gRPC status codes into the portal's
own errors, which the web layer answers as pages:

* NOT_FOUND → ``NotFound("staff")`` → 404
* PERMISSION_DENIED → ``StaffRefused`` → 403
* INVALID_ARGUMENT, ALREADY_EXISTS, FAILED_PRECONDITION → ``StaffInvalid`` → the form
  again with auth's message (400, or 409 for the last two)
* UNAUTHENTICATED → ``StaffSignedOut`` → sign in again
* UNAVAILABLE, DEADLINE_EXCEEDED, anything else → ``StaffUnavailable`` → 503
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from providercenter.auth.v1 import user_admin_pb2 as pb
from providercenter.auth.v1 import user_admin_pb2_grpc
from services.common import tracing
from services.common.grpc_util import channel
from services.portal.errors import NotFound, PortalError

DEFAULT_TIMEOUT_S = 3.0
ROLES = ("admin", "manager", "front_desk", "read_only")


class StaffRefused(PortalError):
    """Auth refused the action (PERMISSION_DENIED): not an admin, or it would lock the practice out."""


class StaffInvalid(PortalError):
    """Auth would not take the input as sent; ``code`` is the gRPC status name."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class StaffSignedOut(PortalError):
    """Auth no longer accepts the user's token (UNAUTHENTICATED)."""


class StaffUnavailable(PortalError):
    """Auth's admin service could not answer now; try again shortly."""


def _when(seconds: int) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


@dataclass(frozen=True)
class StaffMember:
    user_id: str
    name: str
    email: str
    roles: tuple[str, ...]
    status: str
    locked: bool
    mfa_enrolled: bool
    created_at: datetime | None
    last_sign_in_at: datetime | None

    @classmethod
    def of(cls, m: pb.StaffUser) -> StaffMember:
        return cls(
            user_id=m.user_id,
            name=m.name,
            email=m.email,
            roles=tuple(m.roles),
            status=m.status,
            locked=m.locked,
            mfa_enrolled=m.mfa_enrolled,
            created_at=_when(m.created_at),
            last_sign_in_at=_when(m.last_sign_in_at),
        )


@dataclass(frozen=True)
class MfaReset:
    state: str  # done | pending
    request_id: str
    user: StaffMember


@dataclass(frozen=True)
class MfaResetRequest:
    request_id: str
    user_id: str
    requested_by: str
    requested_at: datetime | None


@dataclass(frozen=True)
class SecurityEvent:
    at: datetime | None
    event: str
    outcome: str
    reason: str
    ip: str
    user_agent: str


class StaffAdmin:
    """A thread-safe client; one per process. The channel connects lazily."""

    def __init__(self, address: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive: every call needs a deadline")
        self.address = address
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: user_admin_pb2_grpc.UserAdminServiceStub | None = None

    def _call(self, method: str, request: object, token: str) -> object:
        with self._lock:
            if self._stub is None:
                self._channel = channel(self.address)
                self._stub = user_admin_pb2_grpc.UserAdminServiceStub(tracing.propagating(self._channel))
            stub = self._stub
        try:
            return getattr(stub, method)(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=self.timeout_s
            )
        except grpc.RpcError as exc:
            raise _translate(exc) from exc

    def list_users(
        self, token: str, query: str = "", limit: int = 50, offset: int = 0
    ) -> tuple[list[StaffMember], int]:
        r = self._call("ListUsers", pb.ListUsersRequest(query=query, limit=limit, offset=offset), token)
        return [StaffMember.of(u) for u in r.users], r.total  # type: ignore[attr-defined]

    def get_user(self, token: str, user_id: str) -> StaffMember:
        return StaffMember.of(self._call("GetUser", pb.UserRef(user_id=user_id), token))  # type: ignore[arg-type]

    def invite(self, token: str, user_id: str, email: str, name: str, roles: list[str]) -> StaffMember:
        request = pb.InviteUserRequest(user_id=user_id, email=email, name=name, roles=roles)
        return StaffMember.of(self._call("InviteUser", request, token))  # type: ignore[arg-type]

    def set_roles(self, token: str, user_id: str, roles: list[str]) -> StaffMember:
        request = pb.SetRolesRequest(user_id=user_id, roles=roles)
        return StaffMember.of(self._call("SetRoles", request, token))  # type: ignore[arg-type]

    def act(self, token: str, action: str, user_id: str) -> StaffMember:
        """``action``: suspend, reactivate or unlock."""
        method = {"suspend": "SuspendUser", "reactivate": "ReactivateUser", "unlock": "UnlockUser"}[action]
        return StaffMember.of(self._call(method, pb.UserRef(user_id=user_id), token))  # type: ignore[arg-type]

    def reset_mfa(self, token: str, user_id: str) -> MfaReset:
        r = self._call("ResetMfa", pb.UserRef(user_id=user_id), token)
        return MfaReset(r.state, r.request_id, StaffMember.of(r.user))  # type: ignore[attr-defined]

    def approve_mfa_reset(self, token: str, request_id: str) -> MfaReset:
        r = self._call("ApproveMfaReset", pb.ApproveMfaResetRequest(request_id=request_id), token)
        return MfaReset(r.state, r.request_id, StaffMember.of(r.user))  # type: ignore[attr-defined]

    def mfa_requests(self, token: str) -> list[MfaResetRequest]:
        r = self._call("ListMfaResetRequests", pb.ListMfaResetRequestsRequest(), token)
        return [
            MfaResetRequest(q.request_id, q.user_id, q.requested_by, _when(q.requested_at))
            for q in r.requests  # type: ignore[attr-defined]
        ]

    def activity(self, token: str, user_id: str, limit: int = 50) -> list[SecurityEvent]:
        r = self._call("ListActivity", pb.ListActivityRequest(user_id=user_id, limit=limit), token)
        return [
            SecurityEvent(_when(e.at), e.event, e.outcome, e.reason, e.ip, e.user_agent)
            for e in r.events  # type: ignore[attr-defined]
        ]

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = None
            self._stub = None


def _translate(exc: grpc.RpcError) -> PortalError:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound("staff")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return StaffRefused(details or "Not allowed.")
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    ):
        return StaffInvalid(details or "Not accepted.", code.name)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return StaffSignedOut(details or "Please sign in again.")
    return StaffUnavailable(f"auth's admin service could not answer ({code.name})")
