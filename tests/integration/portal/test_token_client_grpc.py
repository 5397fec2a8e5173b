"""GrpcTokenVerifier against a real gRPC server (port 0) implementing TokenService here."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from providercenter.auth.v1 import token_pb2, token_pb2_grpc
from services.common.grpc_util import build_server
from services.common.token_client import GrpcTokenVerifier, TokenServiceUnavailable
from tests.support.infra import free_port

pytestmark = pytest.mark.integration


class TokenService(token_pb2_grpc.TokenServiceServicer):
    """Tokens named ``good-*`` are active for audience ``portal``; others are revoked.

    ``unavailable_next`` makes the next calls abort with UNAVAILABLE; ``delay_s``
    makes every call slow.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.unavailable_next = 0
        self.delay_s = 0.0
        self.deadlines: list[float | None] = []
        self._lock = threading.Lock()

    def ValidateToken(  # noqa: N802
        self, request: token_pb2.ValidateTokenRequest, context: grpc.ServicerContext
    ) -> token_pb2.ValidateTokenResponse:
        with self._lock:
            self.calls += 1
            self.deadlines.append(context.time_remaining())
            fail = self.unavailable_next > 0
            if fail:
                self.unavailable_next -= 1
        if fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, "revocation state unavailable")
        if self.delay_s:
            time.sleep(self.delay_s)
        if request.audience != "portal":
            return token_pb2.ValidateTokenResponse(active=False, reason=token_pb2.WRONG_AUDIENCE)
        if not request.token.startswith("good-"):
            return token_pb2.ValidateTokenResponse(active=False, reason=token_pb2.REVOKED)
        return token_pb2.ValidateTokenResponse(
            active=True,
            sub="u-1",
            practice_id="p-1",
            roles=["admin"],
            scope="openid profile email",
            sid="s-1",
            exp=int(time.time()) + 300,
            amr=["pwd", "otp"],
            client_id="portal",
            jti="j-" + request.token,
            acr="urn:providercenter:aal2",
            auth_time=int(time.time()) - 10,
            name="Dana Admin",
            practice_name="Sunny Dental Group",
        )


@pytest.fixture
def service() -> Iterator[tuple[TokenService, str]]:
    servicer = TokenService()
    server, port, _health = build_server(
        [lambda s: token_pb2_grpc.add_TokenServiceServicer_to_server(servicer, s)],
        ["providercenter.auth.v1.TokenService"],
        "127.0.0.1:0",
    )
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0).wait()


def test_validates_over_grpc_with_a_deadline_and_caches(service: tuple[TokenService, str]) -> None:
    servicer, address = service
    verifier = GrpcTokenVerifier(address, "portal", timeout_s=2.0)
    try:
        info = verifier.verify("good-1")
        assert info.active and info.name == "Dana Admin" and info.practice_name == "Sunny Dental Group"
        assert info.roles == ("admin",) and info.amr == ("pwd", "otp")
        assert verifier.verify("bad-1").reason == "REVOKED"
        verifier.verify("good-1")
        assert servicer.calls == 2  # the repeat came from the cache
        # gRPC sends the timeout on the wire rounded up to its units, so the server may see a
        # few ms more than the client's 2 s; what matters is that there is a deadline.
        assert servicer.deadlines[0] is not None and 0 < servicer.deadlines[0] <= 2.1
        time.sleep(1.05)
        verifier.verify("good-1")
        assert servicer.calls == 3
        verifier.check_ready()
    finally:
        verifier.close()


def test_audience_is_sent(service: tuple[TokenService, str]) -> None:
    _servicer, address = service
    verifier = GrpcTokenVerifier(address, "billing")
    try:
        assert verifier.verify("good-1").reason == "WRONG_AUDIENCE"
    finally:
        verifier.close()


def test_one_unavailable_answer_is_retried(service: tuple[TokenService, str]) -> None:
    servicer, address = service
    servicer.unavailable_next = 1
    verifier = GrpcTokenVerifier(address, "portal")
    try:
        assert verifier.verify("good-1").active
        assert servicer.calls == 2
        servicer.unavailable_next = 2
        with pytest.raises(TokenServiceUnavailable):
            verifier.verify("good-2")
    finally:
        verifier.close()


def test_a_slow_server_is_unavailable_within_the_deadline(service: tuple[TokenService, str]) -> None:
    """Two tries of 0.2 s each against a server that would take 5 s: the caller is answered
    by its own deadlines (the bound is loose: this is about not waiting for the server)."""
    servicer, address = service
    servicer.delay_s = 5.0
    verifier = GrpcTokenVerifier(address, "portal", timeout_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(TokenServiceUnavailable):
            verifier.verify("good-1")
        assert time.monotonic() - started < 3.0
    finally:
        verifier.close()


def test_no_server_is_unavailable_quickly() -> None:
    verifier = GrpcTokenVerifier(f"127.0.0.1:{free_port()}", "portal", timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(TokenServiceUnavailable):
            verifier.verify("good-1")
        with pytest.raises(TokenServiceUnavailable):
            verifier.check_ready()
        assert time.monotonic() - started < 2.5
    finally:
        verifier.close()


def test_a_server_that_comes_back_is_used_again() -> None:
    port = free_port()
    verifier = GrpcTokenVerifier(f"127.0.0.1:{port}", "portal", timeout_s=1.0)
    servicer = TokenService()
    try:
        with pytest.raises(TokenServiceUnavailable):
            verifier.verify("good-1")
        server, _port, _health = build_server(
            [lambda s: token_pb2_grpc.add_TokenServiceServicer_to_server(servicer, s)],
            [],
            f"127.0.0.1:{port}",
        )
        server.start()
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert verifier.verify("good-1").active
                    break
                except TokenServiceUnavailable:
                    # gRPC backs off between reconnection attempts.
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        finally:
            server.stop(0).wait()
    finally:
        verifier.close()
