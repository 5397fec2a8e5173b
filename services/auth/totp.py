"""TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s steps), replay-safe.

:func:`matching_step` is pure: it returns the time step a code matches within
±1 step (RFC 6238 §5.2), and the caller refuses a step already used. Secrets are
kept encrypted at rest with AES-256-GCM under a key from configuration.
"""

from __future__ import annotations

import hmac
import os
import unicodedata

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

STEP_S = 30
DIGITS = 6
WINDOW = 1


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226 §4 recommends at least 128, ideally 160)."""
    return pyotp.random_base32(32)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step within ±WINDOW whose code equals ``code``, or None."""
    # NFKC turns full-width digits (some keyboards type them) into ASCII; anything
    # else non-ASCII is refused here, before compare_digest, which raises on it.
    code = unicodedata.normalize("NFKC", code).strip().replace(" ", "")
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int(now // STEP_S)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer_name: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=issuer_name
    )


class SecretBox:
    """Encrypts TOTP secrets at rest; the associated data binds a ciphertext to its user."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, user_pk: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), user_pk.encode())

    def open(self, sealed: bytes, user_pk: str) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], user_pk.encode()).decode()
