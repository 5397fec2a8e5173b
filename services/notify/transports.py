"""Handing a rendered message to the outside world: an SMTP server in production,
``.eml`` files under ``var/mail/`` by default.

Both build the same RFC 5322 message (multipart text + HTML) whose
``Message-ID`` is derived from the outbox id, so a redelivery after a crash is
recognisable as the same message by the receiving side (and by our tests).
A transport returns normally only when the message was accepted; anything else
raises :class:`TransportError`, which says whether trying again could help.
"""

from __future__ import annotations

import contextlib
import email.policy
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class OutgoingEmail:
    """A stored message as the worker hands it to a transport."""

    message_id: str
    to: str
    subject: str
    text: str
    html: str
    attempt: int = 1


class TransportError(Exception):
    """The message was not accepted.

    ``permanent`` means the receiving side refused this message for good (the
    recipient does not exist, say); retrying it would only annoy the server.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason[:MAX_ERROR_CHARS])
        self.permanent = permanent


class Transport(Protocol):
    """Delivers one message. Returning means accepted; failing raises ``TransportError``."""

    name: str

    def send(self, outgoing: OutgoingEmail) -> None: ...


def parse_from_address(value: str) -> tuple[str, str]:
    """``"Name <addr@domain>"`` or ``"addr@domain"`` as (display name, address)."""
    display, address = parseaddr(value)
    if not address or "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(f"{value!r} is not an email address (expected 'Name <user@domain>')")
    return display, address


def message_id_header(message_id: str, sender_address: str) -> str:
    """The RFC 5322 Message-ID for an outbox message: the same on every redelivery."""
    domain = sender_address.rpartition("@")[2] or "providercenter.invalid"
    return f"<{message_id}@{domain}>"


def build_email(outgoing: OutgoingEmail, sender: str, *, now: datetime | None = None) -> EmailMessage:
    """The RFC 5322 message: plain text first, HTML as the preferred alternative."""
    display, address = parse_from_address(sender)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = formataddr((display, address)) if display else address
    msg["To"] = outgoing.to
    msg["Subject"] = outgoing.subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = message_id_header(outgoing.message_id, address)
    # RFC 3834: automatic replies (out-of-office) should not answer this message.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(outgoing.text)
    msg.add_alternative(outgoing.html, subtype="html")
    return msg


class FileTransport:
    """Writes each delivery as ``<time>-<message id>-<attempt>.eml`` under ``directory``.

    One file per delivery (not per message) so a redelivery shows up as a second
    file instead of silently overwriting the first. Written to a hidden
    temporary file and renamed, so a reader never sees half a message.
    """

    name = "file"

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, outgoing: OutgoingEmail) -> None:
        now = datetime.now(UTC)
        data = build_email(outgoing, self.sender, now=now).as_bytes()
        name = f"{now:%Y%m%dT%H%M%S%f}Z-{outgoing.message_id}-{outgoing.attempt}.eml"
        target = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            _fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise TransportError(f"cannot write {target}: {exc.strerror or exc}") from exc
        # The subject only: the body may hold a password-reset link.
        log.info(
            "mail written",
            extra={"message_id": outgoing.message_id, "subject": outgoing.subject, "file": str(target)},
        )


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a crash could otherwise lose the new name)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SmtpUrl:
    """``smtp://[user:pass@]host[:port][?starttls=true]`` or ``smtps://…`` (implicit TLS)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    implicit_tls: bool = False


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_smtp_url(url: str) -> SmtpUrl:
    """Parse ``NOTIFY_SMTP_URL``; raise ``ValueError`` with a reason an operator can act on."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"scheme must be smtp or smtps, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("no host given (expected smtp://host:port)")
    if parts.path not in ("", "/"):
        raise ValueError(f"unexpected path {parts.path!r}")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)} (only starttls is supported)")
    starttls = False
    if "starttls" in options:
        raw = options["starttls"][-1].strip().lower()
        if raw not in _TRUE | _FALSE:
            raise ValueError(f"starttls must be true or false, got {raw!r}")
        starttls = raw in _TRUE
    implicit_tls = parts.scheme == "smtps"
    if implicit_tls and starttls:
        raise ValueError("smtps:// already uses TLS; starttls does not apply")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError("a password was given without a user name")
    return SmtpUrl(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        username=username,
        password=password,
        starttls=starttls,
        implicit_tls=implicit_tls,
    )


class SmtpTransport:
    """Delivers over SMTP, one connection per message.

    A connection per message keeps failure handling simple (no half-broken
    session carried to the next message); the volume here is account email,
    not bulk mail.
    """

    name = "smtp"

    def __init__(self, url: SmtpUrl, sender: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.sender = sender
        self.timeout_s = timeout_s
        self._envelope_from = parse_from_address(sender)[1]

    def _connect(self) -> smtplib.SMTP:
        if self.url.implicit_tls:
            return smtplib.SMTP_SSL(
                self.url.host, self.url.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.url.host, self.url.port, timeout=self.timeout_s)

    def send(self, outgoing: OutgoingEmail) -> None:
        msg = build_email(outgoing, self.sender)
        where = f"{self.url.host}:{self.url.port}"
        try:
            client = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"cannot connect to SMTP server {where}: {_describe(exc)}") from exc
        try:
            client.ehlo()
            if self.url.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if self.url.username:
                client.login(self.url.username, self.url.password or "")
            client.send_message(msg, from_addr=self._envelope_from, to_addrs=[outgoing.to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = bool(codes) and all(code >= 500 for code in codes)
            raise TransportError(
                f"SMTP server {where} refused the recipient: {_describe(exc)}", permanent=permanent
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"SMTP delivery to {where} failed: {_describe(exc)}") from exc
        finally:
            # The message is accepted once DATA is answered; a failing QUIT changes nothing.
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
            client.close()
        log.info("mail sent", extra={"message_id": outgoing.message_id, "subject": outgoing.subject})


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            for code, reply in exc.recipients.values()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{exc.smtp_code} {text}"
    return f"{type(exc).__name__}: {exc}"
