"""The decision engine's rules, one by one, at their boundaries (services/portal/decisions.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.portal.decisions import (
    Facts,
    Outcome,
    Reason,
    age_on,
    credit_line,
    decide,
    prequalify,
)

TODAY = date(2027, 1, 15)
GOOD = Facts(
    date_of_birth=date(1988, 3, 9),
    annual_income_cents=60_000_00,
    monthly_housing_cents=1_200_00,  # 24 % of income
    requested_cents=3_000_00,
    consent=True,
)


def test_a_good_application_is_approved_with_20_percent_of_income() -> None:
    decision = decide(GOOD, TODAY)
    assert decision.outcome is Outcome.APPROVED
    assert decision.credit_limit_cents == 12_000_00
    assert decision.reasons == ()


def test_the_same_facts_always_give_the_same_decision() -> None:
    assert {decide(GOOD, TODAY) for _ in range(20)} == {decide(GOOD, TODAY)}


@pytest.mark.parametrize(
    ("income", "line"),
    [(12_000_00, 2_400_00), (60_550_00, 12_100_00), (60_499_00, 12_000_00), (125_000_00, 25_000_00), (900_000_00, 25_000_00)],
)
def test_credit_line_is_20_percent_in_100_dollar_steps_capped_at_25000(income: int, line: int) -> None:
    assert credit_line(income) == line


def test_rule_1_no_consent_declines_as_incomplete() -> None:
    decision = decide(replace(GOOD, consent=False), TODAY)
    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons == (Reason.INCOMPLETE,)


def test_rule_2_age_18_on_the_day_of_the_application() -> None:
    turns_18_today = replace(GOOD, date_of_birth=date(2009, 1, 15))
    turns_18_tomorrow = replace(GOOD, date_of_birth=date(2009, 1, 16))
    assert age_on(date(2009, 1, 15), TODAY) == 18
    assert decide(turns_18_today, TODAY).outcome is Outcome.APPROVED
    decision = decide(turns_18_tomorrow, TODAY)
    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons == (Reason.AGE,)


def test_rule_3_income_below_12000_declines() -> None:
    at_minimum = replace(GOOD, annual_income_cents=12_000_00, monthly_housing_cents=0, requested_cents=2_000_00)
    assert decide(at_minimum, TODAY).outcome is Outcome.APPROVED
    decision = decide(replace(at_minimum, annual_income_cents=11_999_99), TODAY)
    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons == (Reason.INCOME,)  # said once, though rule 5 fails too


def test_rule_4_housing_above_half_of_income_declines() -> None:
    half = replace(GOOD, monthly_housing_cents=2_500_00)  # exactly 50 %
    assert decide(half, TODAY).outcome is Outcome.PENDING
    decision = decide(replace(GOOD, monthly_housing_cents=2_500_01), TODAY)
    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons == (Reason.OBLIGATIONS,)


def test_rule_5_asking_for_more_than_40_percent_of_income_declines() -> None:
    decision = decide(replace(GOOD, requested_cents=24_000_01), TODAY)
    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons == (Reason.INCOME,)
    assert decide(replace(GOOD, requested_cents=24_000_00), TODAY).outcome is Outcome.PENDING


def test_rule_6_housing_between_40_and_50_percent_is_reviewed() -> None:
    at_40 = replace(GOOD, monthly_housing_cents=2_000_00)
    assert decide(at_40, TODAY).outcome is Outcome.APPROVED
    decision = decide(replace(GOOD, monthly_housing_cents=2_000_01), TODAY)
    assert decision.outcome is Outcome.PENDING
    assert decision.credit_limit_cents == 0
    assert decision.review_notes == ("housing payment above 40% of income",)


def test_rule_7_asking_for_more_than_the_automatic_line_is_reviewed() -> None:
    assert decide(replace(GOOD, requested_cents=12_000_00), TODAY).outcome is Outcome.APPROVED
    decision = decide(replace(GOOD, requested_cents=12_000_01), TODAY)
    assert decision.outcome is Outcome.PENDING
    assert decision.review_notes == ("requested amount above the automatic credit line",)


def test_every_failing_rule_gives_its_reason() -> None:
    everything_wrong = Facts(date(2015, 1, 1), 5_000_00, 900_00, 5_000_00, consent=False)
    decision = decide(everything_wrong, TODAY)
    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons == (Reason.INCOMPLETE, Reason.AGE, Reason.INCOME, Reason.OBLIGATIONS)


def test_zero_income_does_not_divide_by_zero() -> None:
    decision = decide(replace(GOOD, annual_income_cents=0, monthly_housing_cents=0), TODAY)
    assert decision.outcome is Outcome.DECLINED


def test_prequalification_uses_income_only() -> None:
    assert prequalify(11_999_99).likely is False
    likely = prequalify(45_000_00)
    assert likely.likely and likely.estimated_limit_cents == 9_000_00
