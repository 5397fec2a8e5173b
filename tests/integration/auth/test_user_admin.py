"""UserAdminService over real gRPC: auth checks every admin call itself."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from providercenter.auth.v1 import user_admin_pb2 as pb
from providercenter.auth.v1 import user_admin_pb2_grpc
from services.auth import grpc_server
from services.auth.bootstrap import Container
from services.auth.store.models import OutboxMessage
from services.common.grpc_util import channel
from tests.support.auth_factory import TestUser, make_practice, make_user
from tests.support.infra import random_id

pytestmark = pytest.mark.integration


@pytest.fixture
def admin_stub(auth_container: Container) -> Iterator[user_admin_pb2_grpc.UserAdminServiceStub]:
    server, port, _ = grpc_server.build(auth_container, "127.0.0.1:0")
    server.start()
    chan = channel(f"127.0.0.1:{port}")
    yield user_admin_pb2_grpc.UserAdminServiceStub(chan)
    chan.close()
    server.stop(0)


def token_for(container: Container, user: TestUser, roles: list[str]) -> list[tuple[str, str]]:
    """Metadata with a real access token for the portal audience, from a real auth session."""
    session = container.sessions.create(user.user_pk, ["pwd", "otp"], "127.0.0.1", "test")
    token, _ = container.access_tokens.issue(
        sub=user.user_pk,
        client_id=container.settings.portal_client_id,
        audience=[container.settings.portal_client_id],
        scope="openid",
        extra={"sid": session.sid, "practice_id": user.practice_id, "roles": roles},
    )
    return [("authorization", f"Bearer {token}")]


def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_admin_manages_own_practice_and_never_another(auth_container: Container, admin_stub) -> None:
    practice_a = make_practice(auth_container, "Practice A")
    practice_b = make_practice(auth_container, "Practice B")
    admin_a = make_user(auth_container, practice_a, roles=["admin"])
    staff_a = make_user(auth_container, practice_a, roles=["front_desk"])
    staff_b = make_user(auth_container, practice_b, roles=["front_desk"])
    meta = token_for(auth_container, admin_a, ["admin"])

    listed = admin_stub.ListUsers(pb.ListUsersRequest(), metadata=meta, timeout=5)
    ids = {u.user_id for u in listed.users}
    assert ids == {admin_a.user_id, staff_a.user_id}

    assert admin_stub.SetRoles(pb.SetRolesRequest(user_id=staff_a.user_id, roles=["manager"]), metadata=meta, timeout=5).roles == ["manager"]
    assert admin_stub.SuspendUser(pb.UserRef(user_id=staff_a.user_id), metadata=meta, timeout=5).status == "suspended"
    assert admin_stub.ReactivateUser(pb.UserRef(user_id=staff_a.user_id), metadata=meta, timeout=5).status == "active"

    other = pb.UserRef(user_id=staff_b.user_id)
    for call in (
        lambda: admin_stub.GetUser(other, metadata=meta, timeout=5),
        lambda: admin_stub.SuspendUser(other, metadata=meta, timeout=5),
        lambda: admin_stub.ReactivateUser(other, metadata=meta, timeout=5),
        lambda: admin_stub.UnlockUser(other, metadata=meta, timeout=5),
        lambda: admin_stub.ResetMfa(other, metadata=meta, timeout=5),
        lambda: admin_stub.SetRoles(pb.SetRolesRequest(user_id=staff_b.user_id, roles=["admin"]), metadata=meta, timeout=5),
        lambda: admin_stub.ListActivity(pb.ListActivityRequest(user_id=staff_b.user_id), metadata=meta, timeout=5),
    ):
        assert _code(call) == grpc.StatusCode.NOT_FOUND
    with auth_container.db() as db:
        from services.auth import directory

        untouched = directory.find_user(db, staff_b.user_id)
        assert untouched.status == "active" and untouched.roles == ["front_desk"]


def test_non_admins_and_missing_tokens_are_refused(auth_container: Container, admin_stub) -> None:
    practice = make_practice(auth_container)
    clerk = make_user(auth_container, practice, roles=["front_desk"])
    assert _code(lambda: admin_stub.ListUsers(pb.ListUsersRequest(), timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    bad = [("authorization", "Bearer not-a-token")]
    assert _code(lambda: admin_stub.ListUsers(pb.ListUsersRequest(), metadata=bad, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED
    # Roles come from auth's own records, not the token's claims.
    forged_roles = token_for(auth_container, clerk, ["admin"])
    assert _code(lambda: admin_stub.ListUsers(pb.ListUsersRequest(), metadata=forged_roles, timeout=5)) == grpc.StatusCode.PERMISSION_DENIED


def test_invite_writes_invitation_email_and_mfa_reset_needs_second_admin(auth_container: Container, admin_stub) -> None:
    practice = make_practice(auth_container, "Two Admin Dental")
    first = make_user(auth_container, practice, roles=["admin"])
    second = make_user(auth_container, practice, roles=["admin"])
    clerk = make_user(auth_container, practice, roles=["front_desk"])
    meta_first = token_for(auth_container, first, ["admin"])
    meta_second = token_for(auth_container, second, ["admin"])

    new_id = random_id("new.")
    invited = admin_stub.InviteUser(
        pb.InviteUserRequest(user_id=new_id, email=f"{new_id}@example.test", name="New Person", roles=["front_desk"]),
        metadata=meta_first, timeout=5,
    )
    assert invited.status == "invited" and not invited.mfa_enrolled
    with auth_container.db() as db:
        mail = [m for m in db.query(OutboxMessage).all() if m.template == "invitation" and m.to == f"{new_id}@example.test"]
    assert len(mail) == 1 and "/invite?token=" in mail[0].params["invite_url"]
    assert _code(lambda: admin_stub.InviteUser(
        pb.InviteUserRequest(user_id=new_id, email="x@example.test", name="Dup", roles=["front_desk"]), metadata=meta_first, timeout=5
    )) == grpc.StatusCode.ALREADY_EXISTS

    pending = admin_stub.ResetMfa(pb.UserRef(user_id=clerk.user_id), metadata=meta_first, timeout=5)
    assert pending.state == "pending" and pending.user.mfa_enrolled
    assert _code(lambda: admin_stub.ApproveMfaReset(pb.ApproveMfaResetRequest(request_id=pending.request_id), metadata=meta_first, timeout=5)) == grpc.StatusCode.FAILED_PRECONDITION
    done = admin_stub.ApproveMfaReset(pb.ApproveMfaResetRequest(request_id=pending.request_id), metadata=meta_second, timeout=5)
    assert done.state == "done" and not done.user.mfa_enrolled
