"""The payment estimator: what a purchase on a plan costs the patient each month.

Rounding, stated once: every figure is computed exactly in ``Decimal`` (28
significant digits) and rounded once, when reported, to the cent with
ROUND_HALF_UP — with one exception: the monthly amount that pays a deferred-
interest promotion off in time is rounded UP, because rounding it down would
leave a few cents unpaid when the promotion ends and bring on all the deferred
interest.

- Fixed APR (reduced-APR plans, and the standard APR shown as paid off in
  ``STANDARD_EXAMPLE_MONTHS`` equal payments): the amortization formula
  ``payment = P·r / (1 − (1 + r)^−n)`` with ``r = APR / 12 / 100``
  (``P / n`` when the APR is 0). Total of payments = payment × n; interest =
  total − P.
- Deferred interest: pay-off amount = ``P / n`` rounded up. The interest that
  would be charged if the promotion ends unpaid is the interest accrued from the
  purchase date at the standard APR on the full purchase, monthly and not
  compounded: ``P · APR/12/100 · n`` — the most it can be, when nothing was paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal, localcontext

from services.portal.plans import STANDARD_APR, STANDARD_EXAMPLE_MONTHS, Plan, PlanKind

CENT = Decimal("1")


def to_cents(value: Decimal, *, up: bool = False) -> int:
    """``value`` (in cents, exact) as whole cents: half-up, or up when ``up``."""
    return int(value.quantize(CENT, rounding=ROUND_UP if up else ROUND_HALF_UP))


@dataclass(frozen=True)
class Estimate:
    plan_code: str
    kind: str
    amount_cents: int
    months: int
    apr: Decimal
    monthly_payment_cents: int
    total_of_payments_cents: int
    total_interest_cents: int
    # Deferred interest only: what is charged if the promotion ends with a balance (0 otherwise).
    deferred_interest_if_unpaid_cents: int = 0
    standard_apr: Decimal = STANDARD_APR


def amortized_payment(principal_cents: int, apr_percent: Decimal, months: int) -> Decimal:
    """The exact (unrounded) level monthly payment, in cents."""
    if months <= 0:
        raise ValueError("months must be positive")
    with localcontext() as ctx:
        ctx.prec = 28
        principal = Decimal(principal_cents)
        if apr_percent == 0:
            return principal / months
        rate = apr_percent / Decimal(1200)
        return principal * rate / (1 - (1 + rate) ** -months)


def estimate(plan: Plan, amount_cents: int) -> Estimate:
    """The estimate for ``amount_cents`` (> 0) on ``plan``; minimums are the caller's rule."""
    if amount_cents <= 0:
        raise ValueError("amount must be positive")
    if plan.kind is PlanKind.DEFERRED_INTEREST:
        with localcontext() as ctx:
            ctx.prec = 28
            monthly = to_cents(Decimal(amount_cents) / plan.months, up=True)
            deferred = to_cents(Decimal(amount_cents) * STANDARD_APR / Decimal(1200) * plan.months)
        return Estimate(
            plan.code,
            plan.kind.value,
            amount_cents,
            plan.months,
            plan.apr,
            monthly_payment_cents=monthly,
            total_of_payments_cents=amount_cents,
            total_interest_cents=0,
            deferred_interest_if_unpaid_cents=deferred,
        )
    months = plan.months if plan.kind is PlanKind.REDUCED_APR else STANDARD_EXAMPLE_MONTHS
    exact = amortized_payment(amount_cents, plan.apr, months)
    total = to_cents(exact * months)
    return Estimate(
        plan.code,
        plan.kind.value,
        amount_cents,
        months,
        plan.apr,
        monthly_payment_cents=to_cents(exact),
        total_of_payments_cents=total,
        total_interest_cents=total - amount_cents,
    )
