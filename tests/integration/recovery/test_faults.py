"""Recovery email survives faults: the whole chain — auth's outbox, the relay, notify's
server and worker processes — with a real SMTP server as the inbox.

notify's own tests (tests/integration/notify/) prove the outbox and worker in
isolation; these put the whole system through the same faults, starting from
recovery requests at auth's web pages. Each test counts what was requested
(sent), what arrived at the SMTP server (delivered) and how often a message
arrived more than once (duplicates), and prints the counts (run with -s).

The recovery throttles are out of the way here: every request comes from its
own client address, and every user has their own email address.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from services.auth.store.models import OutboxMessage
from services.common.db import make_engine, session_factory
from services.common.supervisor import ProcessSpec
from services.notify.store.models import DeliveryAttempt, Message
from tests.integration.recovery.flows import Client, add_users, random_ip
from tests.support.smtp_inbox import Received, SmtpInbox
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.integration


class Chain:
    """What each part of the chain holds for one test's recipients."""

    def __init__(self, stack: Stack, recipients: list[str]) -> None:
        self.recipients = set(recipients)
        self.auth = make_engine(stack.env["AUTH_DATABASE_URL"])
        self.notify = make_engine(stack.env["NOTIFY_DATABASE_URL"])

    def auth_outbox(self) -> list[OutboxMessage]:
        with session_factory(self.auth)() as db:
            return list(db.scalars(select(OutboxMessage).where(OutboxMessage.to.in_(self.recipients))))

    def messages(self) -> list[Message]:
        with session_factory(self.notify)() as db:
            return list(db.scalars(select(Message).where(Message.recipient.in_(self.recipients))))

    def states(self) -> Counter[str]:
        return Counter(m.state for m in self.messages())

    def attempts(self) -> list[DeliveryAttempt]:
        with session_factory(self.notify)() as db:
            return list(
                db.scalars(
                    select(DeliveryAttempt)
                    .join(Message, Message.id == DeliveryAttempt.message_id)
                    .where(Message.recipient.in_(self.recipients))
                    .order_by(DeliveryAttempt.id)
                )
            )

    def close(self) -> None:
        self.auth.dispose()
        self.notify.dispose()


def request_reminders(stack: Stack, addresses: list[str], browsers: int = 4) -> None:
    """One forgot-User-ID request per address, each from its own client address, from a
    few browsers at once (auth's web server runs several threads)."""

    def one_browser(chunk: list[str]) -> None:
        client = Client(stack)
        page = client.get(stack.issuer + "/forgot-user-id")
        for address in chunk:
            client.session.headers["X-Forwarded-For"] = random_ip()
            answer = client.submit(page, {"email": address})
            assert answer.status_code == 200, (answer.status_code, answer.text[:300])

    with ThreadPoolExecutor(browsers) as pool:
        list(pool.map(one_browser, [addresses[i::browsers] for i in range(browsers)]))


def report(name: str, sent: int, inbox: SmtpInbox, recipients: list[str], **more: int) -> Counter[str]:
    received = inbox.message_ids(set(recipients))
    duplicates = sum(n - 1 for n in received.values())
    extra = "".join(f", {key}={value}" for key, value in more.items())
    print(  # noqa: T201 - the counts the closing note quotes
        f"\n[{name}] sent={sent}, delivered={len(received)} distinct messages "
        f"({sum(received.values())} SMTP deliveries), duplicates={duplicates}{extra}"
    )
    return received


def test_notify_down_while_100_requests_arrive_then_every_email_arrives_once(
    stack: Stack, inbox: SmtpInbox
) -> None:
    addresses = add_users(stack, "Outage Family Dental", 100)
    chain = Chain(stack, addresses)
    try:
        stack.stop("notify-server", "notify-worker")

        request_reminders(stack, addresses)
        # Auth kept every email in its outbox; the relay could hand none of them over.
        rows = chain.auth_outbox()
        assert len(rows) == 100 and all(row.relayed_at is None for row in rows)
        assert inbox.message_ids(set(addresses)) == Counter()

        stack.start("notify-server", "notify-worker")
        wait_for(lambda: chain.states()["delivered"] == 100, 90, 0.2, "100 deliveries")

        received = report(
            "notify down",
            100,
            inbox,
            addresses,
            relay_retries=sum(r.attempts - 1 for r in chain.auth_outbox()),
        )
        assert received == Counter({m.id: 1 for m in chain.messages()}), "lost or duplicated"
        assert inbox.recipients(set(addresses)) == Counter({a.lower(): 1 for a in addresses})
        rows = chain.auth_outbox()
        assert all(row.relayed_at is not None for row in rows)
        assert any(row.attempts > 1 for row in rows), "the relay should have retried while notify was down"
        assert {m.id for m in chain.messages()} == {row.notify_message_id for row in rows}
    finally:
        chain.close()


def test_smtp_down_for_a_while_then_messages_are_retried_and_delivered(
    stack: Stack, inbox: SmtpInbox
) -> None:
    addresses = add_users(stack, "Quiet Lane Vision", 10)
    chain = Chain(stack, addresses)
    try:
        inbox.stop()
        request_reminders(stack, addresses)
        # Every message has been tried and has failed at least twice while the server was away.
        wait_for(
            lambda: (ms := chain.messages()) and len(ms) == 10 and all(m.attempts >= 2 for m in ms),
            60,
            0.2,
            "failed attempts while SMTP is down",
        )
        failing = chain.messages()
        assert {m.state for m in failing} <= {"pending", "sending"}
        assert all("cannot connect" in (m.last_error or "") for m in failing if m.state == "pending")

        inbox.start()
        wait_for(lambda: chain.states()["delivered"] == 10, 60, 0.2, "deliveries once SMTP is back")

        attempts = chain.attempts()
        failed = [a for a in attempts if a.outcome == "failed"]
        received = report("SMTP down", 10, inbox, addresses, failed_attempts=len(failed))
        assert received == Counter({m.id: 1 for m in chain.messages()})
        assert all(a.error and "cannot connect" in a.error for a in failed)
        assert Counter(a.message_id for a in attempts if a.outcome == "delivered") == received
    finally:
        chain.close()


def test_worker_killed_mid_batch_loses_nothing_and_duplicates_are_counted(
    stack: Stack, inbox: SmtpInbox
) -> None:
    """SIGKILL the worker the moment the SMTP server has accepted the 5th message of a
    10-message batch, before the worker hears "250": the one case where a message
    may arrive twice. Everything else must arrive exactly once."""
    addresses = add_users(stack, "Sudden Stop Dental", 40)
    chain = Chain(stack, addresses)
    try:
        stack.stop("notify-worker")
        request_reminders(stack, addresses)
        wait_for(lambda: chain.states()["pending"] == 40, 60, 0.2, "40 messages waiting in notify")

        killed: list[Received] = []
        accepted = threading.Event()
        wanted = {a.lower() for a in addresses}

        def kill_on_fifth(received: Received) -> None:
            if killed or not wanted & {r.lower() for r in received.rcpt_tos}:
                return
            if len(inbox.message_ids(wanted)) == 5:
                os.killpg(stack.processes["notify-worker"].pid, signal.SIGKILL)
                killed.append(received)
                accepted.set()

        inbox.on_accept = kill_on_fifth
        stack.start("notify-worker")
        assert accepted.wait(60), "the worker never delivered five messages"
        stack.stop("notify-worker", kill=True)  # reap it
        inbox.on_accept = None

        # Mid-batch: four settled, the fifth sent but never recorded, the rest still claimed.
        states = chain.states()
        assert states["delivered"] == 4 and states["sending"] == 6 and states["pending"] == 30, states
        unsettled = [a for a in chain.attempts() if a.outcome is None]
        assert [a.message_id for a in unsettled] == [killed[0].message_id]

        stack.start("notify-worker")
        wait_for(lambda: chain.states()["delivered"] == 40, 60, 0.2, "every delivery after the restart")

        received = report("worker killed", 40, inbox, addresses, unsettled_attempts=len(unsettled))
        assert set(received) == {m.id for m in chain.messages()}, "a message was lost"
        duplicates = {message_id: n - 1 for message_id, n in received.items() if n > 1}
        # The only duplicate is the message the SMTP server had accepted when the worker died,
        # and notify's records show it: an attempt that never reported an outcome.
        assert duplicates == {killed[0].message_id: 1}
        assert sum(duplicates.values()) == len(unsettled)
    finally:
        inbox.on_accept = None
        chain.close()


def test_two_workers_on_one_outbox_deliver_each_message_once(stack: Stack, inbox: SmtpInbox) -> None:
    """Two worker processes on one outbox database: disjoint claims (FOR UPDATE SKIP LOCKED
    on PostgreSQL — the CI run with PC_TEST_DATABASE_URL; SQLite serialises writers with
    BEGIN IMMEDIATE, so the test runs there too)."""
    addresses = add_users(stack, "Twin Oaks Clinics", 100)
    chain = Chain(stack, addresses)
    stack.specs["notify-worker-2"] = ProcessSpec("notify-worker-2", stack.specs["notify-worker"].argv)
    try:
        stack.start("notify-worker-2")
        wait_for(
            lambda: "delivery worker started" in stack.log("notify-worker-2"), 60, 0.2, "the second worker"
        )
        inbox.delay_s = 0.01  # each send takes a moment, so the two workers overlap

        request_reminders(stack, addresses)
        wait_for(lambda: chain.states()["delivered"] == 100, 60, 0.2, "100 deliveries by two workers")

        attempts = chain.attempts()
        workers = Counter(a.worker for a in attempts)
        received = report(
            "two workers",
            100,
            inbox,
            addresses,
            **{f"worker_{i + 1}": n for i, n in enumerate(workers.values())},
        )
        assert received == Counter({m.id: 1 for m in chain.messages()}), (
            "a message was delivered twice or lost"
        )
        assert len(attempts) == 100 and {a.outcome for a in attempts} == {"delivered"}
        assert len(workers) == 2, f"both workers should have taken part: {workers}"
    finally:
        stack.stop("notify-worker-2")
        del stack.specs["notify-worker-2"]
        chain.close()
