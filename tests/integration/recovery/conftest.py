"""One real system for the recovery tests: every process, a real SMTP server as the inbox.

The stack is shared by the package (a stack takes many seconds to start); the
tests keep out of each other's way by making their own users and by coming
from their own client addresses (``X-Forwarded-For``, trusted as behind an
ingress). That lets this stack keep the recovery and sign-in limits low, as
the throttle and lockout tests need, without the other tests tripping them.

The notify knobs are set for tests: quick backoff (the SMTP outage test), a
short lease and SMTP timeout (the worker-killed test: a dead worker's claimed
messages are taken up again after two seconds, not sixty).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.infra import Databases
from tests.support.smtp_inbox import SmtpInbox
from tests.support.stack import Stack, make_stack

LIMITS = {
    "AUTH_TRUSTED_PROXIES": "1",
    "AUTH_RECOVERY_PER_ADDRESS": "5",
    "AUTH_RECOVERY_PER_ACCOUNT": "3",
    "AUTH_LOCKOUT_THRESHOLD": "3",
    "AUTH_ADDRESS_MAX_FAILURES": "8",
}

NOTIFY_FOR_TESTS = {
    "NOTIFY_BACKOFF_BASE_S": "0.3",
    "NOTIFY_BACKOFF_CAP_S": "1.5",
    "NOTIFY_MAX_ATTEMPTS": "30",
    "NOTIFY_SMTP_TIMEOUT_S": "0.6",
    "NOTIFY_LEASE_S": "2",
    "NOTIFY_BATCH_SIZE": "10",
}


@pytest.fixture(scope="package")
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


@pytest.fixture(scope="package")
def recovery_stack(
    tmp_path_factory: pytest.TempPathFactory, databases: Databases, redis_url: str, inbox: SmtpInbox
) -> Iterator[Stack]:
    system = make_stack(
        tmp_path_factory.mktemp("recovery"),
        databases,
        redis_url,
        NOTIFY_SMTP_URL=inbox.url,
        **LIMITS,
        **NOTIFY_FOR_TESTS,
    )
    system.start()
    yield system
    system.stop()


@pytest.fixture
def stack(recovery_stack: Stack, inbox: SmtpInbox) -> Iterator[Stack]:
    """The shared stack, whole again after each test (a fault test may have stopped parts of it)."""
    yield recovery_stack
    inbox.delay_s = 0.0
    inbox.on_accept = None
    inbox.start()
    for name in recovery_stack.specs:
        process = recovery_stack.processes.get(name)
        if process is None or process.poll() is not None:
            recovery_stack.processes.pop(name, None)
            recovery_stack.start(name)
