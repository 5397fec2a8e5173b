"""Request ids and W3C trace context, carried from hop to hop.

Each unit of work — an HTTP request, a gRPC call, an outbox row being relayed —
runs in a :class:`Trace`: the request id (``X-Request-Id`` on HTTP,
``x-request-id`` in gRPC metadata) and a W3C ``traceparent``
(https://www.w3.org/TR/trace-context/). An incoming id or traceparent is kept
when well formed; otherwise a new one is made. This hop gets its own span id,
and what it sends onwards names that span as the parent.

The current trace lives in a context variable, so log lines (``logs.py`` adds
``request_id`` and ``trace_id`` to each) and outgoing gRPC calls (the client
interceptor below) and outgoing HTTP calls (:func:`outgoing_headers`, which the
portal's Authlib client for auth sends) pick it up without being passed it.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "x-request-id"  # gRPC metadata keys are lower case
TRACEPARENT_KEY = "traceparent"

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


@dataclass(frozen=True)
class Trace:
    request_id: str
    trace_id: str
    span_id: str
    # The caller's span, when the trace came from upstream.
    parent_id: str | None = None
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        """What to send downstream: this trace, with this hop's span as the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def headers(self) -> dict[str, str]:
        return {REQUEST_ID_HEADER: self.request_id, TRACEPARENT_KEY: self.traceparent}

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((REQUEST_ID_KEY, self.request_id), (TRACEPARENT_KEY, self.traceparent))


_current: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("pc_trace", default=None)


def parse_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    """``(trace_id, parent_id, sampled)`` from a well-formed version-00 (or later) header, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    # Version ff is invalid; version 00 has nothing after the flags; all-zero ids are invalid.
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return trace_id, parent_id, bool(int(flags, 16) & 1)


def clean_request_id(value: str | None) -> str | None:
    """An incoming request id we are willing to log and pass on (8–64 safe characters), else None."""
    if value and _REQUEST_ID.match(value):
        return value
    return None


def new_trace(request_id: str | None = None, traceparent: str | None = None) -> Trace:
    """A trace for this hop, continuing the caller's where it sent usable values."""
    parsed = parse_traceparent(traceparent)
    rid = clean_request_id(request_id) or uuid.uuid4().hex
    span_id = secrets.token_hex(8)
    if parsed is None:
        return Trace(request_id=rid, trace_id=secrets.token_hex(16), span_id=span_id)
    trace_id, parent_id, sampled = parsed
    return Trace(request_id=rid, trace_id=trace_id, span_id=span_id, parent_id=parent_id, sampled=sampled)


def current() -> Trace | None:
    return _current.get()


def begin(trace: Trace) -> contextvars.Token:
    """Make ``trace`` current; pass the token to :func:`end`."""
    return _current.set(trace)


def end(token: contextvars.Token | None = None) -> None:
    if token is not None:
        with contextlib.suppress(ValueError):  # a token from another context: just clear
            _current.reset(token)
            return
    _current.set(None)


@contextlib.contextmanager
def continued(request_id: str | None = None, traceparent: str | None = None) -> Iterator[Trace]:
    """Run a block in a trace continuing ``request_id``/``traceparent`` (a relayed outbox row, say)."""
    trace = new_trace(request_id, traceparent)
    token = begin(trace)
    try:
        yield trace
    finally:
        end(token)


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    trace = current()
    return trace.metadata() if trace is not None else ()


def outgoing_headers() -> dict[str, str]:
    """The current trace as HTTP headers for a call onwards (``X-Request-Id``, ``traceparent``)."""
    trace = current()
    return trace.headers() if trace is not None else {}


def from_metadata(metadata: object) -> Trace:
    """The trace of an incoming gRPC call, from its invocation metadata."""
    values: dict[str, str] = {}
    for item in metadata or ():  # type: ignore[attr-defined]
        key, value = item[0], item[1]
        if key in (REQUEST_ID_KEY, TRACEPARENT_KEY) and isinstance(value, str):
            values.setdefault(key, value)
    return new_trace(values.get(REQUEST_ID_KEY), values.get(TRACEPARENT_KEY))


class _ClientCallDetails(grpc.ClientCallDetails):
    def __init__(self, details: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class PropagatingInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds the current trace's ``x-request-id`` and ``traceparent`` to every outgoing call."""

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        extra = outgoing_metadata()
        if extra:
            existing = [
                (k, v)
                for k, v in (client_call_details.metadata or ())
                if k not in (REQUEST_ID_KEY, TRACEPARENT_KEY)
            ]
            client_call_details = _ClientCallDetails(client_call_details, [*existing, *extra])
        return continuation(client_call_details, request)


def propagating(channel: grpc.Channel) -> grpc.Channel:
    """``channel`` with the current trace sent along on each call."""
    return grpc.intercept_channel(channel, PropagatingInterceptor())
