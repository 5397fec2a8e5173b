"""The password policy of NIST SP 800-63B §3.1.1.2 (and ASVS 5.0 §6.2).

- at least ``min_length`` characters (12 by default, never fewer than 8),
  counted in Unicode code points after NFKC normalisation; up to 1024 allowed;
- no composition rules and no periodic expiry;
- not one of the 30,000 most common passwords (zxcvbn's list, see data/README.md);
- not containing the User ID, the person's name or the practice's name;
- each refusal says why, so people can choose better.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MAX_LENGTH = 1024
_BLOCKLIST = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@dataclass(frozen=True)
class PolicyViolation:
    code: str
    message: str


@cache
def _common_passwords() -> frozenset[str]:
    with gzip.open(_BLOCKLIST, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def normalise(password: str) -> str:
    """NFKC, so the same password typed on different keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def check(
    password: str,
    *,
    min_length: int,
    user_id: str = "",
    name: str = "",
    practice_name: str = "",
) -> PolicyViolation | None:
    """None when acceptable, else the first rule broken with a message for the user."""
    password = normalise(password)
    if len(password) < min_length:
        return PolicyViolation(
            "too_short",
            f"Use at least {min_length} characters. A few unrelated words make a strong, memorable password.",
        )
    if len(password) > MAX_LENGTH:
        return PolicyViolation("too_long", f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _common_passwords():
        return PolicyViolation(
            "password_blocklisted",
            "That password is one of the most commonly used passwords, so it is easy to guess.",
        )
    if user_id and user_id.lower() in lowered:
        return PolicyViolation("contains_user_id", "The password must not contain your User ID.")
    for part in name.lower().split():
        if len(part) >= 3 and part in lowered:
            return PolicyViolation("contains_name", "The password must not contain your name.")
    practice = practice_name.lower().strip()
    if practice and (practice in lowered or practice.replace(" ", "") in lowered):
        return PolicyViolation(
            "contains_practice_name", "The password must not contain your practice's name."
        )
    return None
