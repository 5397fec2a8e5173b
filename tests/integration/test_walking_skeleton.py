"""The thin slice, real at every seam: three services as real processes, a
sign-in from the portal's front door through auth and back, the token checked
over gRPC, and an email through auth's outbox, notify, and the file transport."""

from __future__ import annotations

import pytest
import requests

from providercenter.auth.v1 import token_pb2, token_pb2_grpc
from services.common.grpc_util import channel
from tests.support.browser_http import portal_access_token, sign_in_through_portal
from tests.support.stack import Stack, add_staff, wait_for

pytestmark = pytest.mark.integration


def test_sign_in_from_portal_to_dashboard_and_validate_token_over_grpc(stack: Stack) -> None:
    stack.start()
    user = add_staff(stack, roles=["manager"], practice_name="Skeleton Smiles")
    browser = requests.Session()

    dashboard = sign_in_through_portal(browser, stack.portal_url, user)

    assert dashboard.status_code == 200
    assert dashboard.url.startswith(stack.portal_url)
    assert user.name in dashboard.text
    assert "Skeleton Smiles" in dashboard.text

    token = portal_access_token(stack.env, browser)
    with channel(stack.auth_grpc) as chan:
        stub = token_pb2_grpc.TokenServiceStub(chan)
        answer = stub.ValidateToken(token_pb2.ValidateTokenRequest(token=token, audience="portal"), timeout=2)
        assert answer.active
        assert answer.sub == user.user_pk
        assert answer.practice_id == user.practice_id
        assert list(answer.roles) == ["manager"]
        assert list(answer.amr) == ["pwd", "otp"]
        wrong = stub.ValidateToken(token_pb2.ValidateTokenRequest(token=token, audience="elsewhere"), timeout=2)
        assert not wrong.active

    # Sign-out ends the session at auth too: the same token is no longer active.
    page = browser.get(stack.portal_url + "/", timeout=10)
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    signed_out = browser.post(stack.portal_url + "/logout", data={"csrf_token": csrf}, timeout=10)
    assert signed_out.status_code == 200
    assert "signed out" in signed_out.text.lower()
    with channel(stack.auth_grpc) as chan:
        answer = token_pb2_grpc.TokenServiceStub(chan).ValidateToken(
            token_pb2.ValidateTokenRequest(token=token, audience="portal"), timeout=2
        )
        assert not answer.active
        assert token_pb2.InactiveReason.Name(answer.reason) == "REVOKED"


def test_email_written_while_notify_is_down_arrives_once_notify_is_up(stack: Stack) -> None:
    stack.start("auth-web", "auth-grpc", "auth-relay")
    user = add_staff(stack)
    browser = requests.Session()
    page = browser.get(stack.issuer + "/forgot-user-id", timeout=10)
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = browser.post(stack.issuer + "/forgot-user-id", data={"csrf_token": csrf, "email": user.email}, timeout=10)
    assert answer.status_code == 200

    mail_dir = stack.directory / "mail"
    assert not list(mail_dir.glob("*.eml")) if mail_dir.exists() else True

    stack.start("notify-server", "notify-worker")
    delivered = wait_for(lambda: list(mail_dir.glob("*.eml")) if mail_dir.exists() else [], 30, what="the email")
    assert len(delivered) == 1
    text = delivered[0].read_text()
    assert user.user_id in text
    assert f"To: {user.email}" in text
