"""TokenService.ValidateToken over a real gRPC channel: every way a token can fail, with its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from providercenter.auth.v1 import token_pb2, token_pb2_grpc
from services.auth import grpc_server
from services.auth.bootstrap import Container
from services.common.grpc_util import channel, check_health

pytestmark = pytest.mark.integration

AUD = "portal-under-test"


@pytest.fixture
def stub(auth_container: Container) -> Iterator[token_pb2_grpc.TokenServiceStub]:
    server, port, _health = grpc_server.build(auth_container, "127.0.0.1:0")
    server.start()
    chan = channel(f"127.0.0.1:{port}")
    assert check_health(f"127.0.0.1:{port}")
    yield token_pb2_grpc.TokenServiceStub(chan)
    chan.close()
    server.stop(0)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _issue(container: Container, **overrides) -> str:
    token, _ = container.access_tokens.issue(
        sub="user-1", client_id=AUD, audience=[AUD], scope="openid", now=overrides.pop("now", None)
    )
    return token


def _validate(stub, token: str, audience: str = AUD) -> token_pb2.ValidateTokenResponse:
    return stub.ValidateToken(token_pb2.ValidateTokenRequest(token=token, audience=audience), timeout=2)


def _reason(response) -> str:
    return token_pb2.InactiveReason.Name(response.reason)


def test_valid_token_is_active(stub, auth_container: Container) -> None:
    response = _validate(stub, _issue(auth_container))
    assert response.active
    assert response.sub == "user-1"
    assert response.client_id == AUD


def test_tampered_signature(stub, auth_container: Container) -> None:
    head, payload, sig = _issue(auth_container).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    response = _validate(stub, forged)
    assert not response.active and _reason(response) == "BAD_SIGNATURE"


def test_wrong_audience(stub, auth_container: Container) -> None:
    response = _validate(stub, _issue(auth_container), audience="another-api")
    assert not response.active and _reason(response) == "WRONG_AUDIENCE"


def test_expired(stub, auth_container: Container) -> None:
    old = _issue(auth_container, now=int(time.time()) - 3600)
    response = _validate(stub, old)
    assert not response.active and _reason(response) == "EXPIRED"


def test_unknown_kid(stub, auth_container: Container) -> None:
    head, payload, sig = _issue(auth_container).split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    header["kid"] = "not-a-key-we-have"
    response = _validate(stub, f"{_b64(json.dumps(header).encode())}.{payload}.{sig}")
    assert not response.active and _reason(response) == "UNKNOWN_KEY"


def test_alg_none(stub, auth_container: Container) -> None:
    _head, payload, _sig = _issue(auth_container).split(".")
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    response = _validate(stub, f"{header}.{payload}.")
    assert not response.active and _reason(response) == "ALGORITHM_NOT_ALLOWED"


def test_hmac_signed_with_public_key(stub, auth_container: Container) -> None:
    key = auth_container.signing.current()
    public_pem = key.private.get_public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _head, payload, _sig = _issue(auth_container).split(".")
    header = _b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    signature = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    response = _validate(stub, f"{header}.{payload}.{signature}")
    assert not response.active and _reason(response) == "ALGORITHM_NOT_ALLOWED"


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "....", "x" * 9000, "%%%.%%%.%%%"])
def test_garbage(stub, garbage: str) -> None:
    response = _validate(stub, garbage)
    assert not response.active and _reason(response) == "MALFORMED"


def test_missing_audience_is_invalid_argument(stub, auth_container: Container) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _validate(stub, _issue(auth_container), audience="")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_revoked_jti_and_ended_session(stub, auth_container: Container) -> None:
    token = _issue(auth_container)
    claims = auth_container.access_tokens.verify(token, AUD)
    auth_container.revocation.revoke_access(claims.jti, claims.exp)
    response = _validate(stub, token)
    assert not response.active and _reason(response) == "REVOKED"

    session = auth_container.sessions.create("user-2", ["pwd", "otp"], "127.0.0.1", "test")
    user_token, _ = auth_container.access_tokens.issue(
        sub="user-2", client_id=AUD, audience=[AUD], scope="openid", extra={"sid": session.sid}
    )
    assert _validate(stub, user_token).active
    auth_container.sessions.end(session.sid)
    ended = _validate(stub, user_token)
    assert not ended.active and _reason(ended) == "REVOKED"
