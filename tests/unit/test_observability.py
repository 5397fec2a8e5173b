"""Request ids and trace context, JSON log lines, and the HTTP metrics middleware (no I/O)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from services.common import logs, tracing, web

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "header",
    [
        f"00-{TRACE}-{PARENT}-01",
        f"00-{TRACE.upper()}-{PARENT}-01",  # tolerated, normalised to lower case
        f"01-{TRACE}-{PARENT}-01-future-fields",  # a later version may append fields
    ],
)
def test_a_valid_traceparent_is_continued_with_a_new_span(header: str) -> None:
    trace = tracing.new_trace("req-12345678", header)
    assert trace.trace_id == TRACE and trace.parent_id == PARENT and trace.sampled
    assert trace.span_id != PARENT and len(trace.span_id) == 16
    assert trace.traceparent == f"00-{TRACE}-{trace.span_id}-01"
    assert trace.request_id == "req-12345678"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has nothing after the flags
        f"00-{TRACE[:-1]}-{PARENT}-01",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(header: str | None) -> None:
    trace = tracing.new_trace(None, header)
    assert trace.parent_id is None and len(trace.trace_id) == 32 and trace.trace_id != TRACE
    assert tracing.parse_traceparent(trace.traceparent) == (trace.trace_id, trace.span_id, True)


@pytest.mark.parametrize("incoming", ["short", "x" * 65, "has space in it", 'quote"injection', "line\nbreak"])
def test_an_unusable_request_id_is_replaced(incoming: str) -> None:
    assert tracing.new_trace(incoming, None).request_id != incoming


def test_outgoing_metadata_follows_the_current_trace() -> None:
    assert tracing.outgoing_metadata() == ()
    with tracing.continued("req-abcdefgh", f"00-{TRACE}-{PARENT}-00") as trace:
        metadata = dict(tracing.outgoing_metadata())
        assert metadata["x-request-id"] == "req-abcdefgh"
        assert metadata["traceparent"] == f"00-{TRACE}-{trace.span_id}-00"
        incoming = tracing.from_metadata(list(metadata.items()))
        assert incoming.trace_id == TRACE and incoming.parent_id == trace.span_id
    assert tracing.current() is None


def _log_line(**extra: object) -> dict:
    stream = io.StringIO()
    logger = logging.getLogger("test.observability")
    logger.handlers[:] = [logs.json_handler("test", stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info("hello", extra=extra)
    return json.loads(stream.getvalue())


def test_log_lines_carry_the_trace_and_never_a_credential_field() -> None:
    with tracing.continued("req-logline1", None) as trace:
        line = _log_line(password="hunter2", access_token="eyJ.x.y", client_secret="s", sub="user-1")
    assert line["request_id"] == "req-logline1" and line["trace_id"] == trace.trace_id
    assert line["password"] == line["access_token"] == line["client_secret"] == "[redacted]"
    assert line["sub"] == "user-1" and line["msg"] == "hello" and isinstance(line["pid"], int)
    assert "request_id" not in _log_line()


def _app(trusted_proxies: int = 0) -> Flask:
    app = Flask(__name__)
    web.install(app, service="unit", readiness_checks={}, tls=False, trusted_proxies=trusted_proxies)

    @app.get("/items/<int:item>")
    def item(item: int) -> str:
        return str(item)

    return app


def _count(text: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "http_requests_total"
                and sample.labels.get("route") == route
                and sample.labels.get("status") == status
            ):
                return sample.value
    return 0.0


def test_requests_are_counted_by_route_pattern_and_the_scrape_is_not() -> None:
    client = _app().test_client()

    def get(path: str, **headers: str):  # type: ignore[no-untyped-def]
        # A WSGI server closes every response; the count is taken then.
        response = client.get(path, headers=headers)
        response.close()
        return response

    before = get("/metrics").get_data(as_text=True)
    for number in range(3):
        assert get(f"/items/{number}").status_code == 200
    assert get("/no/such/page").status_code == 404
    response = get("/items/7", **{"X-Request-Id": "req-echoed-1", "traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert response.headers["X-Request-Id"] == "req-echoed-1"
    after = get("/metrics").get_data(as_text=True)
    assert _count(after, "/items/<int:item>", "200") - _count(before, "/items/<int:item>", "200") == 4
    assert _count(after, "unmatched", "404") - _count(before, "unmatched", "404") == 1
    assert _count(after, "/metrics", "200") == 0


def test_metrics_are_not_served_through_a_trusted_proxy() -> None:
    client = _app(trusted_proxies=1).test_client()
    assert client.get("/metrics").status_code == 200  # Prometheus, scraping the pod directly
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404
