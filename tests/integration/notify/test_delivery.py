"""Delivery by the worker (in-process) to a real SMTP server, with retries, leases and redrive."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from services.cli import main as cli_main
from services.common.db import session_factory
from services.notify import bootstrap
from services.notify.delivery_queue import DeliveryQueue, unsettled_attempts
from services.notify.outbox import Outbox
from services.notify.settings import Settings
from services.notify.worker import DeliveryWorker
from tests.integration.notify.conftest import (
    PARAMS,
    Inbox,
    NotifyDb,
    Processes,
    SmtpServer,
    ctl_prefix,
    enqueue,
    wait_until,
)
from tests.support.infra import random_id

pytestmark = pytest.mark.integration


def _prog() -> str:
    return "providerctl" if ctl_prefix()[1] == "-c" else "notify"


def smtp_worker(
    settings: Settings, notify_db: NotifyDb, smtp: SmtpServer, **changes: object
) -> DeliveryWorker:
    configured = replace(settings, smtp_url=smtp.url, **changes)  # type: ignore[arg-type]
    return bootstrap.build_worker(configured, notify_db.engine)


@contextmanager
def running(worker: DeliveryWorker) -> Iterator[threading.Event]:
    """The worker's real loop in a thread, stopped (like SIGTERM) at the end."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "worker did not stop"


def test_delivered_over_smtp(
    settings: Settings, notify_db: NotifyDb, outbox: Outbox, smtp: SmtpServer
) -> None:
    message_id = outbox.send(
        random_id("k"),
        "password_reset",
        "ann@example.test",
        {"name": "Ann", "reset_url": "https://auth.example.test/r?t=1", "expires_minutes": "30"},
    ).message_id
    worker = smtp_worker(settings, notify_db, smtp)
    assert worker.run_once() == 1

    assert smtp.inbox.message_ids() == {message_id: 1}
    received = smtp.inbox.messages[0]
    assert received["Subject"] == "Reset your Provider Center password"
    assert received["To"] == "ann@example.test"
    assert received["Message-ID"] == f"<{message_id}@providercenter.example>"
    assert "https://auth.example.test/r?t=1" in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "href=" in received.get_body(("html",)).get_content()  # type: ignore[union-attr]

    status = outbox.status(message_id)
    assert status.state == "delivered" and status.attempts == 1 and status.delivered_at is not None
    assert status.claimed_by is None and status.lease_until is None
    [attempt] = notify_db.attempts(message_id)
    assert attempt.outcome == "delivered" and attempt.finished_at is not None


def test_smtp_down_for_a_while_is_retried_with_backoff_and_delivered(
    settings: Settings, notify_db: NotifyDb, outbox: Outbox, smtp: SmtpServer
) -> None:
    smtp.stop()
    [message_id] = enqueue(outbox, 1)
    worker = smtp_worker(settings, notify_db, smtp, backoff_base_s=0.1, backoff_cap_s=0.4, max_attempts=50)
    with running(worker):
        wait_until(lambda: outbox.status(message_id).attempts >= 4, 10, "four failed attempts")
        failing = outbox.status(message_id)
        assert failing.state in ("pending", "sending")
        assert "cannot connect to SMTP server" in (failing.last_error or "")
        smtp.start()
        wait_until(lambda: outbox.status(message_id).state == "delivered", 10, "delivery after SMTP returned")

    assert smtp.inbox.message_ids() == {message_id: 1}
    attempts = notify_db.attempts(message_id)
    assert [a.outcome for a in attempts[:-1]] == ["failed"] * (len(attempts) - 1)
    assert attempts[-1].outcome == "delivered"
    # Waits grow: after failure n the next try is at least half of min(cap, base * 2**(n-1)) later.
    gaps = [
        (b.started_at - a.started_at).total_seconds() for a, b in zip(attempts, attempts[1:], strict=False)
    ]
    for n, gap in enumerate(gaps[:3], start=1):
        assert gap >= min(0.4, 0.1 * 2 ** (n - 1)) / 2 - 0.01, gaps


def test_refused_recipient_is_dead_at_once(
    settings: Settings, notify_db: NotifyDb, outbox: Outbox, smtp: SmtpServer
) -> None:
    smtp.inbox.refuse.add("ghost@example.test")
    message_id = outbox.send(random_id("k"), "mfa_changed", "ghost@example.test", PARAMS).message_id
    smtp_worker(settings, notify_db, smtp).run_once()
    status = outbox.status(message_id)
    assert status.state == "dead" and status.attempts == 1
    assert "550" in (status.last_error or "")
    assert len(smtp.inbox) == 0


def test_attempts_exhausted_then_notify_retry_delivers(
    settings: Settings,
    notify_db: NotifyDb,
    outbox: Outbox,
    smtp: SmtpServer,
    processes: Processes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    smtp.stop()
    [message_id] = enqueue(outbox, 1)
    worker = smtp_worker(settings, notify_db, smtp, max_attempts=3, backoff_base_s=0.02, backoff_cap_s=0.05)
    with running(worker):
        wait_until(lambda: outbox.status(message_id).state == "dead", 10, "the message to die")
    dead = outbox.status(message_id)
    assert dead.attempts == 3 and "cannot connect" in (dead.last_error or "")

    # The operator's view and redrive, through providerctl's own code.
    monkeypatch.setenv("NOTIFY_DATABASE_URL", notify_db.url)
    monkeypatch.setenv("PC_VAR_DIR", str(tmp_path / "var"))
    assert cli_main(["notify", "list", "--status", "dead"]) == 0
    listing = capsys.readouterr().out
    assert message_id in listing and "dead" in listing and "cannot connect" in listing
    assert cli_main(["notify", "retry", message_id]) == 0
    assert message_id in capsys.readouterr().out
    again = outbox.status(message_id)
    assert again.state == "pending" and again.attempts == 0

    smtp.start()
    with running(worker):
        wait_until(lambda: outbox.status(message_id).state == "delivered", 10, "delivery after retry")
    assert smtp.inbox.message_ids() == {message_id: 1}

    # A delivered message is never sent again.
    assert cli_main(["notify", "retry", message_id]) == 1
    assert "already delivered" in capsys.readouterr().err
    # And as an operator's shell sees it: exit status 1 and a one-line reason.
    unknown = processes.run("retry", "0" * 32)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [f"{_prog()}: no message with id '{'0' * 32}'"]


def test_expired_lease_is_reclaimed_and_the_old_owner_backs_off(
    settings: Settings, notify_db: NotifyDb, outbox: Outbox, smtp: SmtpServer
) -> None:
    """A worker that claimed a batch and vanished: its messages go out once the lease ends."""
    ids = enqueue(outbox, 3)
    sessions = session_factory(notify_db.engine)
    vanished = DeliveryQueue(sessions, "vanished-worker", lease_s=0.5)
    assert sorted(vanished.claim(10)) == sorted(ids)

    worker = smtp_worker(settings, notify_db, smtp)
    assert worker.run_once() == 0  # leases still valid: nothing to take
    time.sleep(0.6)
    assert worker.run_once() == 3
    assert smtp.inbox.message_ids() == dict.fromkeys(ids, 1)
    # The vanished worker comes back: none of them is its to send any more.
    assert all(vanished.start_attempt(message_id, 8) is None for message_id in ids)


def test_sends_that_never_report_back_end_dead_not_looping(
    settings: Settings, notify_db: NotifyDb, outbox: Outbox
) -> None:
    """A message whose every attempt dies mid-send (a poison message) stops at max attempts."""
    [message_id] = enqueue(outbox, 1)
    sessions = session_factory(notify_db.engine)
    clock_now = [outbox.status(message_id).created_at]
    queue = DeliveryQueue(sessions, "crashy", lease_s=1.0, clock=lambda: clock_now[0])
    for _ in range(3):
        assert queue.claim(1) == [message_id]
        assert queue.start_attempt(message_id, max_attempts=3) is not None
        clock_now[0] += timedelta(seconds=2)  # the worker "dies"; its lease runs out
    assert queue.claim(1) == [message_id]
    assert queue.start_attempt(message_id, max_attempts=3) is None
    status = outbox.status(message_id)
    assert status.state == "dead" and "never reported a result" in (status.last_error or "")
    with sessions() as session:
        assert unsettled_attempts(session, message_id) == 3


def test_claims_are_disjoint_between_workers(settings: Settings, notify_db: NotifyDb, outbox: Outbox) -> None:
    """Concurrent claims from several threads never hand one message to two workers."""
    enqueue(outbox, 60)
    sessions = session_factory(notify_db.engine)
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(6)

    def claim(worker_id: str) -> None:
        queue = DeliveryQueue(sessions, worker_id, lease_s=30)
        barrier.wait(5)
        mine: list[str] = []
        for _ in range(10):
            mine += queue.claim(4)
        claimed[worker_id] = mine

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    everything = [message_id for ids in claimed.values() for message_id in ids]
    assert len(everything) == len(set(everything)) == 60


def test_inbox_fixture_counts_redeliveries(smtp: SmtpServer) -> None:
    """The test inbox itself: two deliveries of one message are counted as two."""
    from services.notify.transports import OutgoingEmail, SmtpTransport, parse_smtp_url

    transport = SmtpTransport(parse_smtp_url(smtp.url), "no-reply@providercenter.example", timeout_s=2)
    outgoing = OutgoingEmail("a" * 32, "ann@example.test", "Hi", "text", "<p>html</p>")
    transport.send(outgoing)
    transport.send(outgoing)
    assert smtp.inbox.message_ids() == {"a" * 32: 2}
    assert isinstance(smtp.inbox, Inbox)


def test_a_send_that_outlasts_its_lease_is_still_recorded_as_delivered(
    notify_db: NotifyDb, outbox: Outbox
) -> None:
    """If a slow send loses its lease and another worker reclaims the message, the first
    worker's success still counts, and the second finds nothing left to send."""
    [message_id] = enqueue(outbox, 1)
    sessions = session_factory(notify_db.engine)
    slow = DeliveryQueue(sessions, "slow", lease_s=0.2)
    assert slow.claim(1) == [message_id]
    started = slow.start_attempt(message_id, 8)
    assert started is not None
    time.sleep(0.3)  # the send takes longer than the lease
    other = DeliveryQueue(sessions, "other", lease_s=30)
    assert other.claim(1) == [message_id]
    slow.record_delivered(started)  # the SMTP server did accept it
    assert outbox.status(message_id).state == "delivered"
    assert other.start_attempt(message_id, 8) is None
    assert [a.outcome for a in notify_db.attempts(message_id)] == ["delivered"]
