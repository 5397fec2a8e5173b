"""NotifyService over real gRPC (server on port 0) and a real database, through NotifyClient."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import grpc
import pytest

from providercenter.notify.v1 import notify_pb2, notify_pb2_grpc
from services.common.grpc_util import build_server, channel, check_health
from services.common.notify_client import (
    NotifyClient,
    NotifyMessageNotFound,
    NotifyRejected,
    NotifyUnavailable,
)
from services.notify import bootstrap
from services.notify.grpc_server import SERVICE_NAME
from services.notify.settings import Settings
from tests.integration.notify.conftest import PARAMS, NotifyDb
from tests.support.infra import free_port, random_id

pytestmark = pytest.mark.integration

RESET = {"name": "Ann", "reset_url": "https://auth.example.test/reset?t=abc", "expires_minutes": "30"}


def test_send_stores_the_rendered_message_and_status_reports_it(
    grpc_address: str, notify_db: NotifyDb
) -> None:
    with NotifyClient(grpc_address) as client:
        before = int(time.time())
        result = client.send(random_id("k"), "password_reset", "ann@example.test", RESET)
        assert result.duplicate is False and len(result.message_id) == 32
        status = client.status(result.message_id)
    assert status.state == "pending"
    assert status.attempts == 0 and status.last_error == ""
    assert status.template == "password_reset" and status.to == "ann@example.test"
    assert before - 1 <= status.created_at <= time.time() + 1
    assert status.delivered_at == 0
    stored = notify_db.message(result.message_id)
    assert stored.subject == "Reset your Provider Center password"
    assert "https://auth.example.test/reset?t=abc" in stored.body_text
    assert "https://auth.example.test/reset?t=abc" in stored.body_html


def test_same_key_twice_is_one_message(grpc_address: str, notify_db: NotifyDb) -> None:
    key = random_id("k")
    with NotifyClient(grpc_address) as client:
        first = client.send(key, "mfa_changed", "ann@example.test", PARAMS)
        second = client.send(key, "mfa_changed", "ann@example.test", PARAMS)
        # A different payload under the same key is still the first message (and logged).
        third = client.send(key, "mfa_changed", "other@example.test", {"name": "X", "when": "y"})
    assert (first.duplicate, second.duplicate, third.duplicate) == (False, True, True)
    assert first.message_id == second.message_id == third.message_id
    assert sum(notify_db.counts().values()) == 1
    assert notify_db.message(first.message_id).recipient == "ann@example.test"


def test_concurrent_sends_with_one_key_store_one_message(grpc_address: str, notify_db: NotifyDb) -> None:
    """Eight callers race with the same key, five times over: one message per key, one winner."""
    client = NotifyClient(grpc_address, timeout_s=10)
    for _round in range(5):
        key = random_id("race")
        barrier = threading.Barrier(8)
        results = []
        errors: list[BaseException] = []

        def send() -> None:
            try:
                barrier.wait(5)
                results.append(client.send(key, "mfa_changed", "ann@example.test", PARAMS))  # noqa: B023
            except BaseException as exc:
                errors.append(exc)  # noqa: B023

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        assert not errors
        assert len({r.message_id for r in results}) == 1 and len(results) == 8
        assert sum(1 for r in results if not r.duplicate) == 1
    client.close()
    assert sum(notify_db.counts().values()) == 5


@pytest.mark.parametrize(
    ("key", "template", "to", "params", "reason"),
    [
        ("k", "no_such_template", "ann@example.test", {}, "unknown template 'no_such_template'"),
        ("k", "mfa_changed", "not-an-address", PARAMS, "recipient address"),
        ("k", "mfa_changed", "ann@example.test\r\nBcc: x@y.test", PARAMS, "recipient address"),
        ("", "mfa_changed", "ann@example.test", PARAMS, "idempotency_key is missing"),
        ("k" * 201, "mfa_changed", "ann@example.test", PARAMS, "longer than 200"),
        (
            "k",
            "password_reset",
            "ann@example.test",
            {"name": "Ann"},
            "needs params: expires_minutes, reset_url",
        ),
        ("k", "password_reset", "ann@example.test", RESET | {"reset_url": "javascript:x"}, "reset_url"),
    ],
)
def test_invalid_requests_are_rejected_with_a_clear_reason(
    grpc_address: str,
    notify_db: NotifyDb,
    key: str,
    template: str,
    to: str,
    params: dict[str, str],
    reason: str,
) -> None:
    key = f"{key}-{random_id()}" if key == "k" else key
    with NotifyClient(grpc_address) as client, pytest.raises(NotifyRejected) as caught:
        client.send(key, template, to, params)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert reason in str(caught.value)
    assert sum(notify_db.counts().values()) == 0


def test_raw_grpc_status_codes(grpc_address: str) -> None:
    """The contract as any gRPC client sees it, without our client library."""
    with channel(grpc_address) as chan:
        stub = notify_pb2_grpc.NotifyServiceStub(chan)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetStatus(notify_pb2.GetStatusRequest(message_id="0" * 32), timeout=2)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetStatus(notify_pb2.GetStatusRequest(message_id=""), timeout=2)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as caught:
            stub.Send(notify_pb2.SendRequest(idempotency_key="k", template="x", to="a@b.test"), timeout=2)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_status_of_an_unknown_id_is_not_found(grpc_address: str) -> None:
    with NotifyClient(grpc_address) as client, pytest.raises(NotifyMessageNotFound) as caught:
        client.status("f" * 32)
    assert caught.value.code == "NOT_FOUND"


def test_health_service_reports_serving(grpc_address: str) -> None:
    assert check_health(grpc_address, service=SERVICE_NAME)
    assert check_health(grpc_address)


def test_client_raises_unavailable_when_nothing_listens() -> None:
    with NotifyClient(f"127.0.0.1:{free_port()}", timeout_s=1.0) as client:
        started = time.monotonic()
        with pytest.raises(NotifyUnavailable):
            client.send("k", "mfa_changed", "ann@example.test", PARAMS)
        assert time.monotonic() - started < 3


def test_client_raises_unavailable_when_the_deadline_passes() -> None:
    """A server that answers too slowly: the client's deadline ends the call."""
    release = threading.Event()

    class SlowServicer(notify_pb2_grpc.NotifyServiceServicer):
        def Send(self, request, context):  # type: ignore[no-untyped-def]
            release.wait(5)
            return notify_pb2.SendResponse(message_id="x")

    def register(server: grpc.Server) -> None:
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(SlowServicer(), server)

    server, port, _health = build_server([register], [SERVICE_NAME], "127.0.0.1:0")
    server.start()
    try:
        with NotifyClient(f"127.0.0.1:{port}", timeout_s=0.3) as client:
            started = time.monotonic()
            with pytest.raises(NotifyUnavailable) as caught:
                client.send("k", "mfa_changed", "ann@example.test", PARAMS)
            assert caught.value.code == "DEADLINE_EXCEEDED"
            assert time.monotonic() - started < 2
    finally:
        release.set()
        server.stop(0).wait()


def test_database_outage_is_unavailable_not_internal(settings: Settings) -> None:
    """A database nobody answers on: Send fails with UNAVAILABLE so callers retry."""
    down = replace(settings, database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    running = bootstrap.build_grpc_server(down, "127.0.0.1:0")
    running.server.start()
    try:
        with NotifyClient(f"127.0.0.1:{running.port}", timeout_s=5) as client:
            with pytest.raises(NotifyUnavailable) as caught:
                client.send(random_id("k"), "mfa_changed", "ann@example.test", PARAMS)
            assert caught.value.code == "UNAVAILABLE"
            assert "database is unavailable" in str(caught.value)
    finally:
        running.stop(0.1)
