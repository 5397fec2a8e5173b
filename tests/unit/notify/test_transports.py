"""SMTP URL parsing and the RFC 5322 message both transports send."""

from __future__ import annotations

import email
import email.policy

import pytest

from services.notify.transports import (
    FileTransport,
    OutgoingEmail,
    SmtpUrl,
    build_email,
    message_id_header,
    parse_from_address,
    parse_smtp_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.test:2525", SmtpUrl("mail.example.test", 2525)),
        ("smtp://mail.example.test", SmtpUrl("mail.example.test", 25)),
        ("smtps://mail.example.test", SmtpUrl("mail.example.test", 465, implicit_tls=True)),
        (
            "smtp://user:secret@mail.example.test:587?starttls=true",
            SmtpUrl("mail.example.test", 587, "user", "secret", starttls=True),
        ),
        (
            "smtp://apikey%40corp:p%40ss%3Aw%2Fd@127.0.0.1:1025?starttls=false",
            SmtpUrl("127.0.0.1", 1025, "apikey@corp", "p@ss:w/d"),
        ),
        ("smtp://[::1]:1025/", SmtpUrl("::1", 1025)),
        ("smtp://user@host.test:25", SmtpUrl("host.test", 25, "user", None)),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpUrl) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mail.example.test:25", "scheme"),
        ("mail.example.test:25", "scheme"),
        ("smtp://:25", "no host"),
        ("smtp://host.test:notaport", "not a valid URL"),
        ("smtp://host.test:70000", "not a valid URL"),
        ("smtp://host.test:25?starttls=maybe", "starttls must be"),
        ("smtp://host.test:25?startls=true", "unknown option"),
        ("smtps://host.test?starttls=true", "already uses TLS"),
        ("smtp://host.test/path", "unexpected path"),
        ("smtp://:pw@host.test", "without a user"),
    ],
)
def test_parse_smtp_url_refuses_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_smtp_url(url)


def test_password_is_not_in_repr() -> None:
    assert "secret" not in repr(parse_smtp_url("smtp://user:secret@host.test"))


def test_from_address() -> None:
    assert parse_from_address("Provider Center <no-reply@pc.example>") == (
        "Provider Center",
        "no-reply@pc.example",
    )
    assert parse_from_address("no-reply@pc.example") == ("", "no-reply@pc.example")
    with pytest.raises(ValueError):
        parse_from_address("Provider Center")


OUTGOING = OutgoingEmail(
    message_id="0123456789abcdef0123456789abcdef",
    to="ann@example.test",
    subject="Reset your password — now",
    text="Hello Ann,\nopen https://x.test/r\n",
    html="<p>Hello Ann</p>",
    attempt=2,
)


def test_build_email_is_multipart_alternative_with_stable_message_id() -> None:
    msg = build_email(OUTGOING, "Provider Center <no-reply@pc.example>")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == "<0123456789abcdef0123456789abcdef@pc.example>"
    assert parsed["Message-ID"] == message_id_header(OUTGOING.message_id, "no-reply@pc.example")
    assert parsed["To"] == "ann@example.test"
    assert parsed["From"] == "Provider Center <no-reply@pc.example>"
    assert parsed["Subject"] == "Reset your password — now"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == OUTGOING.text  # type: ignore[union-attr]
    assert parsed.get_body(("html",)).get_content().strip() == OUTGOING.html  # type: ignore[union-attr]
    # RFC 5322 line endings.
    assert b"\r\n" in msg.as_bytes() and b"\n\n" not in msg.as_bytes().replace(b"\r\n", b"")


def test_file_transport_writes_one_complete_file_per_delivery(tmp_path) -> None:  # type: ignore[no-untyped-def]
    transport = FileTransport(tmp_path / "mail", "no-reply@pc.example")
    transport.send(OUTGOING)
    transport.send(OUTGOING)
    files = sorted((tmp_path / "mail").iterdir())
    assert len(files) == 2 and all(f.suffix == ".eml" and OUTGOING.message_id in f.name for f in files)
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == "<0123456789abcdef0123456789abcdef@pc.example>"
