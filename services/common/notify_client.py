"""Sending email through the notify service, for any service that needs to.

Every call carries a deadline. Failures come back as two kinds a caller can act on:

* :class:`NotifyRejected` (INVALID_ARGUMENT): notify will never accept this
  request as it is (unknown template, bad address, missing parameter). Do not
  retry; record the reason for an operator.
* :class:`NotifyUnavailable`: notify could not take the request now (it is
  down, slow, its database is unavailable, or it failed internally). Retry
  later with the same idempotency key; a repeat never sends a second email.

Usage, e.g. in an outbox relay with the outbox row id as the key::

    client = NotifyClient("127.0.0.1:50052")
    result = client.send(f"auth-outbox-{row.id}", "password_reset", row.to, row.params)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import grpc

from providercenter.notify.v1 import notify_pb2, notify_pb2_grpc
from services.common import tracing
from services.common.grpc_util import MAX_MESSAGE_BYTES

DEFAULT_TIMEOUT_S = 2.0

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_retries", 0),
    # gRPC's default reconnect backoff grows to 120 s, during which calls fail at once even
    # though notify is back; a relay should see a restarted notify within seconds.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 5000),
]

_STATE_NAMES = {
    notify_pb2.PENDING: "pending",
    notify_pb2.SENDING: "sending",
    notify_pb2.DELIVERED: "delivered",
    notify_pb2.DEAD: "dead",
}


class NotifyError(Exception):
    """Base of the client's errors; ``code`` is the gRPC status code's name."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class NotifyUnavailable(NotifyError):
    """Notify could not take the request now; retry later with the same idempotency key."""


class NotifyRejected(NotifyError):
    """Notify will never accept this request as sent (INVALID_ARGUMENT); do not retry it."""


class NotifyMessageNotFound(NotifyError):
    """``status`` asked about a message id notify does not know (NOT_FOUND)."""


@dataclass(frozen=True)
class SendResult:
    """Notify's answer to ``send``: the message's id; ``duplicate`` if the key was seen before."""

    message_id: str
    duplicate: bool


@dataclass(frozen=True)
class MessageStatus:
    """Where a message is: ``state`` is pending, sending, delivered or dead.

    Times are seconds since the epoch; ``delivered_at`` is 0 until delivered.
    """

    message_id: str
    state: str
    attempts: int
    last_error: str
    created_at: int
    delivered_at: int
    template: str
    to: str


class NotifyClient:
    """A thread-safe client for ``NotifyService``; one per process is enough.

    The channel connects lazily, so building a client never fails because
    notify is down; the first call that cannot reach it raises ``NotifyUnavailable``.
    """

    def __init__(self, address: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive: every call needs a deadline")
        self.address = address
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: notify_pb2_grpc.NotifyServiceStub | None = None

    def _get_stub(self) -> notify_pb2_grpc.NotifyServiceStub:
        with self._lock:
            if self._stub is None:
                self._channel = grpc.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
                # Every call carries the caller's request id and traceparent as metadata.
                self._stub = notify_pb2_grpc.NotifyServiceStub(tracing.propagating(self._channel))
            return self._stub

    def send(
        self,
        idempotency_key: str,
        template: str,
        to: str,
        params: Mapping[str, str],
        locale: str = "en",
    ) -> SendResult:
        """Hand a message to notify; once this returns, notify has stored it durably."""
        request = notify_pb2.SendRequest(
            idempotency_key=idempotency_key,
            template=template,
            to=to,
            params={str(key): str(value) for key, value in params.items()},
            locale=locale,
        )
        try:
            response = self._get_stub().Send(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return SendResult(message_id=response.message_id, duplicate=response.duplicate)

    def status(self, message_id: str) -> MessageStatus:
        """Where the message is now; ``NotifyMessageNotFound`` for an unknown id."""
        try:
            response = self._get_stub().GetStatus(
                notify_pb2.GetStatusRequest(message_id=message_id), timeout=self.timeout_s
            )
        except grpc.RpcError as exc:
            raise _translate(exc) from exc
        return MessageStatus(
            message_id=response.message_id,
            state=_STATE_NAMES.get(response.state, "unknown"),
            attempts=response.attempts,
            last_error=response.last_error,
            created_at=response.created_at,
            delivered_at=response.delivered_at,
            template=response.template,
            to=response.to,
        )

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = None
            self._stub = None

    def __enter__(self) -> NotifyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _translate(exc: grpc.RpcError) -> NotifyError:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(code)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return NotifyRejected(details, code.name)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotifyMessageNotFound(details, code.name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return NotifyUnavailable("notify did not answer in time", code.name)
    # UNAVAILABLE and everything else (INTERNAL, a misrouted address's UNIMPLEMENTED…):
    # the message was not accepted, and trying again later is the safe answer.
    return NotifyUnavailable(f"notify could not take the request ({code.name}): {details}", code.name)
