"""A real SMTP server (aiosmtpd) on a free port as the tests' inbox.

It keeps every message it accepts, can be stopped and started again on the
same port (an SMTP outage), can slow each DATA (to catch a worker mid-batch)
and can run a hook the moment it has accepted a message (to kill the sender
after the server took the message but before the sender heard "250").

Notify stamps each message with ``Message-ID: <outbox id@domain>``, the same
on every redelivery, so counting Message-IDs counts deliveries per message.

    with SmtpInbox() as inbox:
        stack = make_stack(..., NOTIFY_SMTP_URL=inbox.url)
        ...
        mail = inbox.wait_for(to=user.email, subject="Reset")
        link = inbox.link(mail, "/reset-password")
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.infra import free_port

URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Received:
    """One accepted delivery: the envelope recipients and the parsed message."""

    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        """The outbox id inside ``<id@domain>``."""
        return str(self.message["Message-ID"]).strip().strip("<>").split("@")[0]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[union-attr]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""  # type: ignore[union-attr]


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.inbox.delay_s:
            await asyncio.sleep(self.inbox.delay_s)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        received = Received(tuple(envelope.rcpt_tos), parsed)  # type: ignore[arg-type]
        with self.inbox._cond:
            self.inbox._messages.append(received)
            self.inbox._cond.notify_all()
        hook = self.inbox.on_accept
        if hook is not None:
            hook(received)
        return "250 Message accepted for delivery"


class SmtpInbox:
    """The SMTP server and everything it accepted (thread-safe)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.delay_s = 0.0
        # Called (in the server's thread) after a message is stored, before "250" is sent.
        self.on_accept: Callable[[Received], None] | None = None
        self._controller: Controller | None = None
        self._messages: list[Received] = []
        self._cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is None:
            controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10)
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpInbox:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what arrived -------------------------------------------------------------

    def messages(self, to: str | None = None, subject: str | None = None) -> list[Received]:
        """Accepted messages, oldest first; ``to`` (exact, case-insensitive) and ``subject`` (substring) filter."""
        with self._cond:
            found = list(self._messages)
        if to is not None:
            found = [m for m in found if to.lower() in (r.lower() for r in m.rcpt_tos)]
        if subject is not None:
            found = [m for m in found if subject.lower() in m.subject.lower()]
        return found

    def wait_for(
        self, *, to: str | None = None, subject: str | None = None, count: int = 1, timeout_s: float = 30.0
    ) -> list[Received]:
        """Wait until at least ``count`` matching messages arrived; returns them all (oldest first)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = self.messages(to, subject)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout_s} s waiting for {count} message(s)"
                        f" to={to!r} subject={subject!r}; {len(found)} arrived"
                    )
                self._cond.wait(min(left, 0.5))

    def wait_one(self, *, to: str, subject: str | None = None, timeout_s: float = 30.0) -> Received:
        """The one message for ``to`` (fails if more than one arrived by then)."""
        found = self.wait_for(to=to, subject=subject, timeout_s=timeout_s)
        assert len(found) == 1, [m.subject for m in found]
        return found[0]

    def message_ids(self, recipients: set[str] | None = None) -> Counter[str]:
        """How often each outbox message arrived, optionally only those to ``recipients``."""
        wanted = {r.lower() for r in recipients} if recipients is not None else None
        return Counter(
            m.message_id
            for m in self.messages()
            if wanted is None or any(r.lower() in wanted for r in m.rcpt_tos)
        )

    def recipients(self, recipients: set[str] | None = None) -> Counter[str]:
        """How many messages each envelope recipient received."""
        wanted = {r.lower() for r in recipients} if recipients is not None else None
        return Counter(
            r.lower() for m in self.messages() for r in m.rcpt_tos if wanted is None or r.lower() in wanted
        )

    @staticmethod
    def link(received: Received, path: str) -> str:
        """The one URL in the plain-text body whose path starts with ``path``."""
        urls = [u for u in URL.findall(received.text) if re.match(rf"https?://[^/]+{re.escape(path)}", u)]
        assert len(urls) == 1, (path, urls, received.text)
        return urls[0]


def smtp_inbox() -> Iterator[SmtpInbox]:
    """For a fixture: ``yield from smtp_inbox()``."""
    with SmtpInbox() as inbox:
        yield inbox
