"""The credit decision engine: deterministic, documented rules, answered at once.

The same facts always give the same decision. Rules, in the order they are checked
(every failing rule adds its reason; reasons are ECOA / Regulation B
(12 CFR 1002.9, model form C-1) statements of specific reasons):

1. The patient gave consent to apply and to the credit check; else **declined**:
   "Credit application incomplete".
2. Age on the application date ≥ 18; else **declined**: "Applicant does not meet
   the minimum age requirement to contract".
3. Annual income ≥ $12,000; else **declined**: "Income insufficient for amount of
   credit requested".
4. Housing ratio (12 × monthly housing payment ÷ annual income) ≤ 50 %; else
   **declined**: "Excessive obligations in relation to income".
5. Requested amount ≤ 40 % of annual income; else **declined**: "Income
   insufficient for amount of credit requested" (said once even if rule 3 said it).
6. Housing ratio ≤ 40 %; else **pending review**.
7. Requested amount ≤ the automatic credit line; else **pending review**.

The automatic credit line is 20 % of annual income, at most $25,000, rounded down
to a multiple of $100; approval gives that line (never less than the requested
amount, which rule 7 guarantees). Pending review means a person at the issuer
decides later; no account is opened yet.

Prequalification (a soft check with no credit report and no record) uses rules 3
and the credit line only: likely approved when income ≥ $12,000, with the line
as the estimated limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

MIN_AGE = 18
MIN_INCOME_CENTS = 12_000_00
DECLINE_HOUSING_RATIO = Decimal("0.50")
REVIEW_HOUSING_RATIO = Decimal("0.40")
MAX_REQUEST_SHARE = Decimal("0.40")
LINE_SHARE = Decimal("0.20")
MAX_LINE_CENTS = 25_000_00
LINE_STEP_CENTS = 100_00


class Outcome(StrEnum):
    APPROVED = "approved"
    PENDING = "pending_review"
    DECLINED = "declined"


class Reason(StrEnum):
    """Reg B model-form statements (12 CFR 1002, appendix C, form C-1)."""

    INCOMPLETE = "Credit application incomplete"
    AGE = "Applicant does not meet the minimum age requirement to contract"
    INCOME = "Income insufficient for amount of credit requested"
    OBLIGATIONS = "Excessive obligations in relation to income"


@dataclass(frozen=True)
class Facts:
    """What the decision looks at; money in cents."""

    date_of_birth: date
    annual_income_cents: int
    monthly_housing_cents: int
    requested_cents: int
    consent: bool


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    credit_limit_cents: int = 0
    reasons: tuple[Reason, ...] = ()
    # Why a person must look (pending only), for the application record.
    review_notes: tuple[str, ...] = ()


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def credit_line(annual_income_cents: int) -> int:
    """20 % of income, at most $25,000, in whole $100 steps (rounded down)."""
    raw = int(Decimal(annual_income_cents) * LINE_SHARE)
    return min(MAX_LINE_CENTS, raw - raw % LINE_STEP_CENTS)


def housing_ratio(facts: Facts) -> Decimal:
    if facts.annual_income_cents <= 0:
        return Decimal("Infinity")
    return Decimal(12 * facts.monthly_housing_cents) / Decimal(facts.annual_income_cents)


def decide(facts: Facts, today: date) -> Decision:
    reasons: list[Reason] = []
    if not facts.consent:
        reasons.append(Reason.INCOMPLETE)
    if age_on(facts.date_of_birth, today) < MIN_AGE:
        reasons.append(Reason.AGE)
    if facts.annual_income_cents < MIN_INCOME_CENTS:
        reasons.append(Reason.INCOME)
    ratio = housing_ratio(facts)
    if ratio > DECLINE_HOUSING_RATIO:
        reasons.append(Reason.OBLIGATIONS)
    if (
        Decimal(facts.requested_cents) > Decimal(facts.annual_income_cents) * MAX_REQUEST_SHARE
        and Reason.INCOME not in reasons
    ):
        reasons.append(Reason.INCOME)
    if reasons:
        return Decision(Outcome.DECLINED, reasons=tuple(reasons))

    line = credit_line(facts.annual_income_cents)
    notes: list[str] = []
    if ratio > REVIEW_HOUSING_RATIO:
        notes.append("housing payment above 40% of income")
    if facts.requested_cents > line:
        notes.append("requested amount above the automatic credit line")
    if notes:
        return Decision(Outcome.PENDING, review_notes=tuple(notes))
    return Decision(Outcome.APPROVED, credit_limit_cents=line)


@dataclass(frozen=True)
class Prequalification:
    likely: bool
    estimated_limit_cents: int = 0


def prequalify(annual_income_cents: int) -> Prequalification:
    """The soft check: no credit report, no record, no effect on any later application."""
    if annual_income_cents < MIN_INCOME_CENTS:
        return Prequalification(False)
    return Prequalification(True, credit_line(annual_income_cents))
