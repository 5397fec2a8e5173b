"""Cardholder account numbers: 16 digits in card format, the last one a Luhn check digit.

The issuer prefix is a made-up private-label range (``604587``); nine random
digits follow, then the check digit (ISO/IEC 7812-1 Annex B, the Luhn formula).
Outside the few places that need the whole number, only the last four are shown.
"""

from __future__ import annotations

import random
import secrets

ISSUER_PREFIX = "604587"
LENGTH = 16


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    if not partial.isdigit():
        raise ValueError("digits only")
    total = 0
    # Double every second digit counting from the right of the full number,
    # i.e. the rightmost digit of ``partial`` is doubled.
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_valid(number: str) -> bool:
    """A well-formed account number: 16 ASCII digits whose last is the Luhn check digit."""
    return (
        len(number) == LENGTH
        and number.isascii()
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == number[-1]
    )


def new_number(rng: random.Random | None = None) -> str:
    """A fresh account number; random from the OS unless a seeded ``rng`` is given (demo data)."""
    body_length = LENGTH - len(ISSUER_PREFIX) - 1
    if rng is None:
        body = "".join(str(secrets.randbelow(10)) for _ in range(body_length))
    else:
        body = "".join(str(rng.randrange(10)) for _ in range(body_length))
    partial = ISSUER_PREFIX + body
    return partial + luhn_check_digit(partial)


def normalize(text: str) -> str:
    """What a person types (spaces, dashes) reduced to digits; anything else is kept to fail checks."""
    return "".join(ch for ch in text if ch not in " -")


def last_four(number: str) -> str:
    return number[-4:]


def masked(number: str) -> str:
    """``•••• 1234``: what every page and API answer shows of a number."""
    return f"•••• {number[-4:]}"


def formatted(number: str) -> str:
    """``6045 8712 3456 7890``, for the one place the whole number is shown."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
