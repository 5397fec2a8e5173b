"""Checks on what callers send before anything is stored: the recipient address,
the idempotency key and the locale.

The address check is deliberately "plausible", not RFC 5322 complete: it
refuses what would break a mail header or can never be delivered (no domain,
spaces, control characters, angle brackets, over-long parts) and accepts the
addresses real users have.
"""

from __future__ import annotations

import re

from services.notify.errors import InvalidRequest

MAX_KEY_CHARS = 200
MAX_ADDRESS_CHARS = 254  # RFC 5321 §4.5.3.1.3 path limit minus the angle brackets
MAX_LOCAL_PART_CHARS = 64  # RFC 5321 §4.5.3.1.1

# Local part: printable ASCII or non-ASCII (SMTPUTF8), without whitespace or the
# characters that end or quote an address in a header.
_LOCAL_PART = re.compile(r"""^[^\s@<>()\[\],;:"\\]+$""")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_address(address: str) -> str:
    """Return ``address`` if it is a plausible deliverable email address, else raise."""
    if not address:
        raise InvalidRequest("recipient address is missing")
    if len(address) > MAX_ADDRESS_CHARS:
        raise InvalidRequest(f"recipient address is longer than {MAX_ADDRESS_CHARS} characters")
    if _CONTROL.search(address):
        raise InvalidRequest("recipient address contains control characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidRequest(f"recipient address {address!r} is not of the form name@domain")
    if len(local) > MAX_LOCAL_PART_CHARS or not _LOCAL_PART.match(local):
        raise InvalidRequest(f"recipient address {address!r} has an invalid part before '@'")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidRequest(f"recipient address {address!r} has misplaced dots before '@'")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise InvalidRequest(f"recipient address {address!r} does not have a valid domain")
    return address


def check_idempotency_key(key: str) -> str:
    """Return ``key`` if it can identify a message: non-blank, at most 200 characters."""
    if not key or not key.strip():
        raise InvalidRequest("idempotency_key is missing")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidRequest(f"idempotency_key is longer than {MAX_KEY_CHARS} characters")
    if _CONTROL.search(key):
        raise InvalidRequest("idempotency_key contains control characters")
    return key


def check_locale(locale: str) -> str:
    """A BCP 47-shaped tag, normalised; empty means the default ``en``."""
    if not locale:
        return "en"
    if len(locale) > 35 or not _LOCALE.match(locale):
        raise InvalidRequest(f"locale {locale[:40]!r} is not a BCP 47 language tag")
    return locale


def check_message_id(message_id: str) -> str:
    """Message ids are ours (32 hex digits); refuse anything that cannot be one early."""
    if not message_id:
        raise InvalidRequest("message_id is missing")
    if len(message_id) > 64 or _CONTROL.search(message_id):
        raise InvalidRequest("message_id is not a valid message id")
    return message_id
