"""``NotifyService`` over gRPC: the only place that sees the gRPC context.

Maps the outbox's answers and errors to the contract in
``proto/providercenter/notify/v1/notify.proto``: a bad request is
INVALID_ARGUMENT, an unknown id NOT_FOUND, a database outage UNAVAILABLE (so
callers retry), anything else INTERNAL without details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn, TypeVar

import grpc
from sqlalchemy.exc import DBAPIError, OperationalError

from providercenter.notify.v1 import notify_pb2, notify_pb2_grpc
from services.notify.errors import InvalidRequest, MessageNotFound
from services.notify.outbox import MessageView, Outbox
from services.notify.store.models import DEAD, DELIVERED, PENDING, SENDING

log = logging.getLogger(__name__)

SERVICE_NAME = notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name

_STATES = {
    PENDING: notify_pb2.PENDING,
    SENDING: notify_pb2.SENDING,
    DELIVERED: notify_pb2.DELIVERED,
    DEAD: notify_pb2.DEAD,
}

T = TypeVar("T")


def _epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def status_message(view: MessageView) -> notify_pb2.MessageStatus:
    return notify_pb2.MessageStatus(
        message_id=view.message_id,
        state=_STATES.get(view.state, notify_pb2.DELIVERY_STATE_UNSPECIFIED),
        attempts=view.attempts,
        last_error=view.last_error or "",
        created_at=_epoch(view.created_at),
        delivered_at=_epoch(view.delivered_at),
        template=view.template,
        to=view.to,
    )


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def Send(self, request: notify_pb2.SendRequest, context: grpc.ServicerContext) -> notify_pb2.SendResponse:
        accepted = _call(
            context,
            "Send",
            lambda: self._outbox.send(
                request.idempotency_key,
                request.template,
                request.to,
                dict(request.params),
                request.locale,
            ),
        )
        return notify_pb2.SendResponse(message_id=accepted.message_id, duplicate=accepted.duplicate)

    def GetStatus(
        self, request: notify_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> notify_pb2.MessageStatus:
        view = _call(context, "GetStatus", lambda: self._outbox.status(request.message_id))
        return status_message(view)


def _call(context: grpc.ServicerContext, method: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except InvalidRequest as exc:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except MessageNotFound as exc:
        _abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
    except (OperationalError, DBAPIError) as exc:
        log.error(
            "outbox database unavailable",
            extra={"method": method, "error": f"{type(exc).__name__}: {exc.orig}"[:300]},
        )
        _abort(context, grpc.StatusCode.UNAVAILABLE, "the outbox database is unavailable; try again")
    except Exception:
        log.exception("unexpected error", extra={"method": method})
        _abort(context, grpc.StatusCode.INTERNAL, "internal error")


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


def registrar(outbox: Outbox) -> Callable[[grpc.Server], None]:
    """What ``grpc_util.build_server`` needs to add NotifyService to a server."""

    def register(server: grpc.Server) -> None:
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyServicer(outbox), server)

    return register
