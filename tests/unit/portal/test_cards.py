"""Account numbers: card format, Luhn check digit, masked everywhere but one place."""

from __future__ import annotations

import random

import pytest

from services.portal import cards


@pytest.mark.parametrize(
    "number",
    ["79927398713", "4111111111111111", "5500005555555559", "378282246310005", "6011111111111117"],
)
def test_known_numbers_end_with_their_luhn_digit(number: str) -> None:
    assert cards.luhn_check_digit(number[:-1]) == number[-1]


def test_new_numbers_are_16_digits_with_the_issuer_prefix_and_a_valid_check_digit() -> None:
    for number in [cards.new_number() for _ in range(200)] + [cards.new_number(random.Random(1)) for _ in range(5)]:
        assert len(number) == 16 and number.startswith(cards.ISSUER_PREFIX)
        assert cards.is_valid(number)


def test_one_wrong_digit_or_a_swap_fails_the_check() -> None:
    number = cards.new_number(random.Random(3))
    assert cards.is_valid(number)
    changed = number[:7] + str((int(number[7]) + 1) % 10) + number[8:]
    assert not cards.is_valid(changed)
    i = next(i for i in range(15) if number[i] != number[i + 1] and {number[i], number[i + 1]} != {"0", "9"})
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    assert not cards.is_valid(swapped)


@pytest.mark.parametrize("text", ["", "6045", "60458700000000000", "６０４５８７０００００００００７", "abcdabcdabcdabcd"])
def test_malformed_numbers_are_not_valid(text: str) -> None:
    assert not cards.is_valid(text)


def test_masking_and_formatting() -> None:
    assert cards.masked("6045871234567890") == "•••• 7890"
    assert cards.formatted("6045871234567890") == "6045 8712 3456 7890"
    assert cards.normalize("6045-8712 3456 7890") == "6045871234567890"
