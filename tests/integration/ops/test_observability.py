"""Metrics, logs and traces of the whole system, as real processes (issue 9).

One stack for the module, started as ``providerctl run`` and the container image
start each process, with two gunicorn workers per web service, gunicorn's own
access log on, and the metrics ports of the processes that have no web server.
The tests run in file order; the last one scans every log the others produced.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from services.common.redis_conn import Keys, connect
from tests.integration.ops.support import json_lines, non_json_lines, scrape, total
from tests.support.browser_http import _form, follow, portal_access_token, sign_in_through_portal
from tests.support.infra import Databases, free_port, random_id
from tests.support.stack import Stack, add_staff, make_stack, wait_for

pytestmark = pytest.mark.integration

METRICS_BINDS = (
    "AUTH_GRPC_METRICS_BIND",
    "AUTH_RELAY_METRICS_BIND",
    "NOTIFY_GRPC_METRICS_BIND",
    "NOTIFY_WORKER_METRICS_BIND",
)


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory, databases: Databases, redis_url: str) -> Iterator[Stack]:
    binds = {name: f"127.0.0.1:{free_port()}" for name in METRICS_BINDS}
    stack = make_stack(
        tmp_path_factory.mktemp("ops") / "stack",
        databases,
        redis_url,
        AUTH_WEB_WORKERS="2",
        PORTAL_WEB_WORKERS="2",
        WEB_ACCESS_LOG="true",
        AUTH_LOCKOUT_THRESHOLD="2",
        **binds,
    )
    stack.start()
    yield stack
    stack.stop()


def metrics_url(stack: Stack, bind_name: str) -> str:
    return f"http://{stack.env[bind_name]}/metrics"


def lines(stack: Stack, process: str, **match: object) -> list[dict]:
    """The JSON log lines of ``process`` whose fields equal ``match``."""
    return [
        line
        for line in json_lines(stack.log(process))
        if all(line.get(key) == value for key, value in match.items())
    ]


def new_traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def test_n_requests_move_the_request_counter_by_exactly_n_on_any_scrape_with_two_workers(ops: Stack) -> None:
    base = ops.portal_url
    before = scrape(base + "/metrics")
    marker = random_id("count-")
    answered: Counter[tuple[str, str]] = Counter()  # (route, status) as the client saw them

    def one(index: int) -> tuple[str, str]:
        path = "/" if index % 2 else "/healthz"
        response = requests.get(
            base + path, headers={"X-Request-Id": f"{marker}-{index:04d}"}, allow_redirects=False, timeout=30
        )
        return path, str(response.status_code)

    def burst(first_index: int) -> set[int]:
        with ThreadPoolExecutor(8) as pool:
            answered.update(pool.map(one, range(first_index, first_index + 16)))
        return {
            line["pid"]
            for line in json_lines(ops.log("portal-web"))
            if str(line.get("request_id", "")).startswith(marker) and line.get("msg") == "request"
        }

    def moved(samples: dict, route: str | None = None, status: str | None = None) -> float:
        def where(labels: dict[str, str]) -> bool:
            return (route is None or labels["route"] == route) and (status is None or labels["status"] == status)

        return total(samples, "http_requests_total", where) - total(before, "http_requests_total", where)

    # Which worker accepts a connection is the kernel's choice, and one worker may take
    # them all. So: a burst, then the worker that served it is paused (SIGSTOP: it cannot
    # accept) for a second burst, which the other worker must serve.
    first = burst(0)
    paused = min(first)
    os.kill(paused, signal.SIGSTOP)
    try:
        served_by = burst(16)
        # The worker still running counts the paused one's requests too.
        assert moved(scrape(base + "/metrics")) == sum(answered.values())
    finally:
        os.kill(paused, signal.SIGCONT)
    assert len(served_by) >= 2, served_by
    n = sum(answered.values())

    def timed(samples: dict) -> float:
        return total(samples, "http_request_duration_seconds_count")

    # Each scrape is answered by whichever worker accepts it; all must see the sum.
    for _ in range(10):
        after = scrape(base + "/metrics")
        assert moved(after) == n, (moved(after), n, answered)
        for (route, status), count in answered.items():
            assert moved(after, route, status) == count, (route, status, answered)
        assert timed(after) - timed(before) == n
    assert total(after, "http_requests_in_flight") == 0


def test_a_sign_in_moves_the_sign_in_token_and_validation_counters(ops: Stack) -> None:
    user = add_staff(ops)
    auth_metrics, grpc_metrics = ops.issuer + "/metrics", metrics_url(ops, "AUTH_GRPC_METRICS_BIND")
    before, grpc_before = scrape(auth_metrics), scrape(grpc_metrics)

    browser = requests.Session()
    dashboard = sign_in_through_portal(browser, ops.portal_url, user)
    assert dashboard.status_code == 200 and dashboard.url.rstrip("/") == ops.portal_url

    after, grpc_after = scrape(auth_metrics), scrape(grpc_metrics)

    def moved(name: str, **labels: str) -> float:
        def where(found: dict[str, str]) -> bool:
            return all(found.get(k) == v for k, v in labels.items())

        return total(after, name, where) - total(before, name, where)

    assert moved("auth_sign_ins_total", outcome="success") == 1
    assert moved("auth_sign_ins_total", outcome="failure") == 0
    assert moved("auth_security_events_total", event="sign_in.password", outcome="ok") == 1
    assert moved("auth_security_events_total", event="sign_in.success", outcome="ok") == 1
    assert moved("auth_tokens_issued_total", grant_type="authorization_code") == 1

    def validated(samples: dict) -> float:
        return total(samples, "auth_tokens_validated_total", lambda labels: labels["active"] == "true")

    assert validated(grpc_after) - validated(grpc_before) >= 1
    assert total(grpc_after, "auth_validate_token_duration_seconds_count") >= validated(grpc_after)
    assert total(
        grpc_after,
        "grpc_server_handled_total",
        lambda labels: labels["grpc_method"] == "ValidateToken" and labels["grpc_code"] == "OK",
    ) >= 1


def _signin_page(browser: requests.Session, portal_url: str) -> requests.Response:
    page = follow(browser, browser.get(portal_url + "/", allow_redirects=False, timeout=10))
    assert "/signin" in page.url, page.url
    return page


def test_ids_follow_a_page_view_to_auth_grpc_and_a_lockout_to_notify_with_their_metrics(ops: Stack) -> None:
    # --- browser -> portal -> auth over HTTP (Authlib: the sign-in's token request) ------
    user = add_staff(ops)
    browser = requests.Session()
    callback_id = random_id("rid-callback-")
    callback_trace, callback_parent = new_traceparent()
    sign_in_through_portal(
        browser,
        ops.portal_url,
        user,
        callback_headers={"X-Request-Id": callback_id, "traceparent": callback_parent},
    )
    (callback_line,) = lines(ops, "portal-web", msg="request", request_id=callback_id)
    assert callback_line["route"] == "/auth/callback" and callback_line["trace_id"] == callback_trace
    # The portal exchanged the code at auth's token endpoint during that request, sending its ids.
    (token_line,) = wait_for(
        lambda: lines(ops, "auth-web", msg="request", request_id=callback_id, route="/token"),
        what="auth's log line for the portal's token request",
    )
    assert token_line["method"] == "POST" and token_line["status"] == 200
    assert token_line["trace_id"] == callback_trace

    # --- browser -> portal -> auth (gRPC metadata) ---------------------------------------
    # The portal caches auth's answer for a token for at most one second; after that
    # the next page asks auth again, and that call is the one followed here.
    time.sleep(1.2)
    request_id = random_id("rid-")
    trace_id, traceparent = new_traceparent()
    page = browser.get(
        ops.portal_url + "/", headers={"X-Request-Id": request_id, "traceparent": traceparent}, timeout=10
    )
    assert page.status_code == 200
    assert page.headers["X-Request-Id"] == request_id

    (portal_line,) = lines(ops, "portal-web", msg="request", request_id=request_id)
    assert portal_line["trace_id"] == trace_id and portal_line["route"] == "/" and portal_line["status"] == 200
    (auth_line,) = wait_for(
        lambda: lines(ops, "auth-grpc", msg="grpc call", request_id=request_id),
        what="auth's gRPC log line for the portal's request",
    )
    assert auth_line["trace_id"] == trace_id
    assert auth_line["grpc_method"] == "ValidateToken" and auth_line["grpc_code"] == "OK"
    assert isinstance(auth_line["duration_ms"], float)

    # --- browser -> auth -> outbox -> relay -> notify (a lockout, which emails the owner) ---
    victim = add_staff(ops)
    lockouts_before = total(scrape(ops.issuer + "/metrics"), "auth_lockouts_total")
    worker_metrics = metrics_url(ops, "NOTIFY_WORKER_METRICS_BIND")
    delivered_before = total(
        scrape(worker_metrics), "notify_delivery_attempts_total", lambda labels: labels["result"] == "delivered"
    )
    other = requests.Session()
    page = _signin_page(other, ops.portal_url)
    form = {**_form(page.text), "user_id": victim.user_id, "password": "not-the-password-1"}
    other.post(page.url.split("?")[0], data=form, allow_redirects=False, timeout=30)
    page = _signin_page(other, ops.portal_url)
    lock_id = random_id("rid-lock-")
    lock_trace, lock_parent = new_traceparent()
    locked = other.post(
        page.url.split("?")[0],
        data={**_form(page.text), "user_id": victim.user_id, "password": "not-the-password-2"},
        headers={"X-Request-Id": lock_id, "traceparent": lock_parent},
        allow_redirects=False,
        timeout=30,
    )
    assert locked.status_code < 500 and locked.headers["X-Request-Id"] == lock_id

    (signin_line,) = lines(ops, "auth-web", msg="request", request_id=lock_id)
    assert signin_line["trace_id"] == lock_trace and signin_line["route"] == "/signin"
    (relayed,) = wait_for(
        lambda: lines(ops, "auth-relay", msg="outbox message relayed", request_id=lock_id),
        what="the relay's line for the lockout email",
    )
    assert relayed["trace_id"] == lock_trace and relayed["template"] == "account_locked"
    message_id = relayed["message_id"]
    (send_line,) = lines(ops, "notify-server", msg="grpc call", request_id=lock_id)
    assert send_line["trace_id"] == lock_trace and send_line["grpc_method"] == "Send"
    (accepted,) = lines(ops, "notify-server", msg="message accepted", request_id=lock_id)
    assert accepted["message_id"] == message_id and accepted["trace_id"] == lock_trace
    (delivered_line,) = wait_for(
        lambda: lines(ops, "notify-worker", msg="message delivered", message_id=message_id),
        what="the worker's delivery of the lockout email",
    )
    # The worker continues the trace stored with the message: the same request id, a new span.
    assert delivered_line["request_id"] == lock_id and delivered_line["trace_id"] == lock_trace

    # ...and the metrics saw the same: one lockout, one more delivery, the outboxes drained.
    assert total(scrape(ops.issuer + "/metrics"), "auth_lockouts_total") - lockouts_before == 1
    delivered = total(
        scrape(worker_metrics), "notify_delivery_attempts_total", lambda labels: labels["result"] == "delivered"
    )
    assert delivered - delivered_before >= 1
    relay = wait_for(
        lambda: (s := scrape(metrics_url(ops, "AUTH_RELAY_METRICS_BIND")))
        and total(s, "auth_outbox_depth") == 0
        and s,
        what="auth's outbox to drain",
    )
    assert total(relay, "auth_outbox_scrape_ok") == 1 and total(relay, "auth_outbox_oldest_age_seconds") == 0
    notify = wait_for(
        lambda: (s := scrape(worker_metrics)) and total(s, "notify_outbox_depth") == 0 and s,
        what="notify's outbox to drain",
    )
    assert total(notify, "notify_outbox_scrape_ok") == 1
    assert {dict(labels)["state"] for (name, labels) in notify if name == "notify_outbox_depth"} == {
        "pending",
        "sending",
        "dead",
    }

    print("\ncorrelated log lines:")
    for process, line in (
        ("portal-web", callback_line),
        ("auth-web", token_line),
        ("portal-web", portal_line),
        ("auth-grpc", auth_line),
        ("auth-web", signin_line),
        ("auth-relay", relayed),
        ("notify-server", send_line),
        ("notify-server", accepted),
    ):
        print(f"  {process}: {line}")


def test_one_browser_request_is_followed_from_portal_through_auth_to_notify(ops: Stack) -> None:
    """A practice administrator invites a colleague: one POST to the portal, which asks
    auth's UserAdminService (gRPC), whose outbox row the relay hands to notify, which
    delivers the invitation. The request id and the trace of that POST are on every hop."""
    admin = add_staff(ops, roles=["admin"])
    browser = requests.Session()
    sign_in_through_portal(browser, ops.portal_url, admin)
    form = browser.get(ops.portal_url + "/staff/invite", timeout=10)
    assert form.status_code == 200
    new_id = random_id("inv.")
    request_id = random_id("rid-invite-")
    trace_id, traceparent = new_traceparent()
    invited = browser.post(
        ops.portal_url + "/staff/invite",
        data={
            "csrf_token": _form(form.text)["csrf_token"],
            "user_id": new_id,
            "name": "Ines Invited",
            "email": f"{new_id}@example.test",
            "roles": "front_desk",
        },
        headers={"X-Request-Id": request_id, "traceparent": traceparent},
        allow_redirects=False,
        timeout=30,
    )
    assert invited.status_code == 302 and invited.headers["X-Request-Id"] == request_id

    (portal_line,) = lines(ops, "portal-web", msg="request", request_id=request_id)
    assert portal_line["route"] == "/staff/invite" and portal_line["trace_id"] == trace_id
    (grpc_line,) = lines(ops, "auth-grpc", msg="grpc call", request_id=request_id, grpc_method="InviteUser")
    assert grpc_line["trace_id"] == trace_id and grpc_line["grpc_code"] == "OK"
    (relayed,) = wait_for(
        lambda: lines(ops, "auth-relay", msg="outbox message relayed", request_id=request_id),
        what="the relay's line for the invitation",
    )
    assert relayed["trace_id"] == trace_id and relayed["template"] == "invitation"
    (send_line,) = lines(ops, "notify-server", msg="grpc call", request_id=request_id, grpc_method="Send")
    (accepted,) = lines(ops, "notify-server", msg="message accepted", request_id=request_id)
    assert send_line["trace_id"] == accepted["trace_id"] == trace_id
    assert accepted["message_id"] == relayed["message_id"]
    (delivered,) = wait_for(
        lambda: lines(ops, "notify-worker", msg="message delivered", message_id=accepted["message_id"]),
        what="the invitation's delivery",
    )
    assert delivered["request_id"] == request_id and delivered["trace_id"] == trace_id
    print("\none request, every hop:")
    for process, line in (
        ("portal-web", portal_line),
        ("auth-grpc", grpc_line),
        ("auth-relay", relayed),
        ("notify-server", send_line),
        ("notify-server", accepted),
        ("notify-worker", delivered),
    ):
        print(f"  {process}: {line}")


def test_metric_ports_answer_health_and_web_metrics_are_not_served_through_the_ingress(ops: Stack) -> None:
    for name in METRICS_BINDS:
        health = requests.get(f"http://{ops.env[name]}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok", name
        assert requests.get(f"http://{ops.env[name]}/nothing", timeout=5).status_code == 404
    # Locally (no trusted proxy configured) /metrics answers whatever the headers say.
    assert requests.get(ops.portal_url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5).ok


def _secrets_of_the_run(ops: Stack, browser: requests.Session) -> dict[str, str]:
    """Everything that must never reach a log: keys, passwords, TOTP secrets, tokens, cookies, links."""
    found = {
        name: ops.env[name]
        for name in (
            "AUTH_SECRET_KEY",
            "AUTH_TOTP_KEY",
            "AUTH_CLIENT_SECRET_KEY",
            "PORTAL_CLIENT_SECRET",
            "PORTAL_SECRET_KEY",
        )
    }
    access = portal_access_token(ops.env, browser)
    found["access token"] = access
    found["access token signature"] = access.rsplit(".", 1)[-1]
    keys = Keys(ops.env["REDIS_KEY_PREFIX"], "portal")
    client = connect(ops.env["REDIS_URL"])
    for key in client.scan_iter(keys("tokens", "*")):
        stored = client.get(key)
        if stored and b"refresh_token" in stored:
            import json

            refresh = json.loads(stored).get("refresh_token")
            if refresh:
                found[f"refresh token {key!r}"] = refresh
    for cookie in browser.cookies:
        found[f"cookie {cookie.name}"] = cookie.value
    for mail in Path(ops.env["NOTIFY_MAIL_DIR"]).rglob("*.eml"):
        for token in re.findall(r"token=3D([A-Za-z0-9_\-=\r\n]+)|token=([A-Za-z0-9_\-]+)", mail.read_text()):
            value = (token[0] or token[1]).replace("=\r\n", "").replace("=\n", "")
            if len(value) >= 16:
                found[f"link token in {mail.name}"] = value[:40]
    return found


def test_every_log_line_is_json_and_none_holds_a_secret(ops: Stack) -> None:
    # One more full session, with everything a log could leak: password, code, tokens.
    user = add_staff(ops)
    browser = requests.Session()
    sign_in_through_portal(browser, ops.portal_url, user)
    browser.get(ops.portal_url + "/", timeout=10)
    forgot = follow(browser, browser.get(ops.issuer + "/forgot-password", allow_redirects=False, timeout=10))
    if forgot.status_code == 200 and "csrf_token" in forgot.text:
        browser.post(
            forgot.url.split("?")[0],
            data={**_form(forgot.text), "user_id": user.user_id, "email": user.email},
            timeout=10,
        )
    wait_for(
        lambda: total(scrape(metrics_url(ops, "NOTIFY_WORKER_METRICS_BIND")), "notify_outbox_depth") == 0
        and total(scrape(metrics_url(ops, "AUTH_RELAY_METRICS_BIND")), "auth_outbox_depth") == 0,
        what="the outboxes to drain",
    )
    found = _secrets_of_the_run(ops, browser)
    found["password"] = user.password
    found["TOTP secret"] = user.totp_secret
    assert any(name.startswith("link token") for name in found), "no emailed link to look for"
    assert any(name.startswith("cookie") for name in found)

    logs = {name: ops.log(name) for name in ops.specs}
    assert all(logs.values()), [name for name, text in logs.items() if not text]
    for name, text in logs.items():
        assert non_json_lines(text) == [], f"{name} wrote lines that are not JSON"
        for what, value in found.items():
            assert value not in text, f"{name}'s log holds the {what}"
    # gunicorn's own access lines are JSON too, and never carry a query string.
    access = [line for line in json_lines(logs["portal-web"]) if line.get("logger") == "gunicorn.access"]
    assert access and all("?" not in line["path"] for line in access)
    callback = [line for line in access if line["path"] == "/auth/callback"]
    assert callback and all(line["request_id"] for line in callback)
