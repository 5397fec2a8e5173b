"""Estimator figures against an independent computation: the level payment found by
simulating the amortization schedule month by month (bisection on exact fractions),
not by the closed formula the estimator uses; plus textbook figures."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from services.portal import plans
from services.portal.estimator import amortized_payment, estimate, to_cents


def balance_after(principal: Fraction, monthly_rate: Fraction, months: int, payment: Fraction) -> Fraction:
    balance = principal
    for _ in range(months):
        balance = balance * (1 + monthly_rate) - payment
    return balance


def schedule_payment(principal_cents: int, apr_percent: str, months: int) -> Fraction:
    """The payment that leaves exactly nothing after ``months``, found by bisection (cents)."""
    principal = Fraction(principal_cents)
    rate = Fraction(Decimal(apr_percent)) / 1200
    low, high = Fraction(0), principal * 2
    for _ in range(80):
        middle = (low + high) / 2
        if balance_after(principal, rate, months, middle) > 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def half_up(value: Fraction) -> int:
    """Round half up to a whole cent, on exact fractions (positive values)."""
    return int((value * 2 + 1) // 2)


CASES = [
    # amount in cents, plan code
    (100_000, "RA24"),
    (250_000, "RA24"),
    (1_000_000, "RA36"),
    (1_234_567, "RA36"),
    (250_000, "RA48"),
    (4_999_999, "RA48"),
    (250_000, "RA60"),
    (2_500_000, "RA60"),
    (99_999, "STD"),
    (1_000, "STD"),
    (750_000, "STD"),
]


@pytest.mark.parametrize(("amount", "code"), CASES)
def test_fixed_apr_payment_matches_the_simulated_schedule(amount: int, code: str) -> None:
    plan = plans.BY_CODE[code]
    result = estimate(plan, amount)
    months = plan.months or plans.STANDARD_EXAMPLE_MONTHS
    expected = schedule_payment(amount, str(plan.apr), months)
    assert result.months == months
    assert result.monthly_payment_cents == half_up(expected)
    assert result.total_of_payments_cents == half_up(expected * months)
    assert result.total_interest_cents == result.total_of_payments_cents - amount
    # Paying the rounded payment every month clears the loan to within a cent a month.
    left = balance_after(Fraction(amount), Fraction(Decimal(plan.apr)) / 1200, months, Fraction(result.monthly_payment_cents))
    assert abs(left) <= months


@pytest.mark.parametrize(
    ("amount", "apr", "months", "payment"),
    [
        (1_000_000, "6", 60, 19_333),  # $10,000 at 6% for 5 years: $193.33
        (2_000_000, "5", 36, 59_942),  # $20,000 at 5% for 3 years: $599.42
        (100_000, "12", 12, 8_885),  # $1,000 at 12% for 1 year: $88.85
        (120_000, "0", 12, 10_000),  # no interest: equal parts
    ],
)
def test_textbook_figures(amount: int, apr: str, months: int, payment: int) -> None:
    assert to_cents(amortized_payment(amount, Decimal(apr), months)) == payment


@pytest.mark.parametrize(
    ("amount", "code"), [(20_000, "DI6"), (100_001, "DI12"), (123_456, "DI18"), (999_999, "DI24"), (500_000, "DI6")]
)
def test_deferred_interest_pays_off_in_time_and_says_what_is_at_stake(amount: int, code: str) -> None:
    plan = plans.BY_CODE[code]
    result = estimate(plan, amount)
    n = plan.months
    # The smallest whole-cent amount that, paid n times, covers the purchase.
    assert result.monthly_payment_cents * n >= amount
    assert (result.monthly_payment_cents - 1) * n < amount
    assert result.total_interest_cents == 0
    assert result.total_of_payments_cents == amount
    deferred = Fraction(amount) * Fraction(Decimal(plans.STANDARD_APR)) / 1200 * n
    assert result.deferred_interest_if_unpaid_cents == half_up(deferred)


def test_rounding_is_half_up_once() -> None:
    assert to_cents(Decimal("10.5")) == 11
    assert to_cents(Decimal("10.4999")) == 10
    assert to_cents(Decimal("10.0001"), up=True) == 11


def test_an_amount_must_be_positive() -> None:
    with pytest.raises(ValueError):
        estimate(plans.BY_CODE["RA24"], 0)
