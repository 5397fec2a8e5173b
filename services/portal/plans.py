"""The financing plans catalogue: what a practice can offer its patients, and what each costs it.

Three kinds:

- **Deferred interest** (``DI6`` … ``DI24``): no interest if the purchase is paid
  in full within the promotion; otherwise interest at the standard APR is
  charged from the purchase date. Each has a minimum purchase.
- **Reduced APR, fixed payments** (``RA24`` … ``RA60``): a fixed APR below the
  standard and equal monthly payments for the term.
- **Standard** (``STD``): the card's revolving standard APR.

The merchant fee rate is the percentage of each purchase the practice pays
(deducted at settlement, issue 7). Rates are ``Decimal`` percentages, money is
integer cents. The catalogue is code, not data: a change is a reviewed commit,
and a practice's choice of which plans it offers is stored per practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class PlanKind(StrEnum):
    DEFERRED_INTEREST = "deferred_interest"
    REDUCED_APR = "reduced_apr"
    STANDARD = "standard"


# The card's standard purchase APR, which new accounts get and deferred interest uses.
STANDARD_APR = Decimal("26.99")
# The standard plan is revolving; the estimator shows it paid off in this many equal payments.
STANDARD_EXAMPLE_MONTHS = 24


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    kind: PlanKind
    months: int
    apr: Decimal  # percent; 0 during a deferred-interest promotion
    min_purchase_cents: int
    merchant_fee_rate: Decimal  # percent of the purchase the practice pays

    @property
    def is_promotional(self) -> bool:
        return self.kind is not PlanKind.STANDARD

    def disclosure(self) -> str:
        """The promotion's terms in the words shown to a patient (stored with each charge in issue 7)."""
        if self.kind is PlanKind.DEFERRED_INTEREST:
            return (
                f"No interest if paid in full within {self.months} months. Interest will be charged to "
                f"your account from the purchase date at the standard APR of {STANDARD_APR}% if the "
                f"purchase balance is not paid in full within {self.months} months. "
                f"Minimum purchase ${self.min_purchase_cents // 100:,}."
            )
        if self.kind is PlanKind.REDUCED_APR:
            return (
                f"{self.apr}% APR with fixed monthly payments for {self.months} months until paid in "
                f"full. Minimum purchase ${self.min_purchase_cents // 100:,}."
            )
        return f"Standard purchase APR of {STANDARD_APR}%. Minimum interest charge may apply."


def _di(months: int, min_dollars: int, fee: str) -> Plan:
    return Plan(
        f"DI{months}",
        f"{months} months deferred interest",
        PlanKind.DEFERRED_INTEREST,
        months,
        Decimal("0"),
        min_dollars * 100,
        Decimal(fee),
    )


def _ra(months: int, apr: str, min_dollars: int, fee: str) -> Plan:
    return Plan(
        f"RA{months}",
        f"{months} months at {apr}% APR",
        PlanKind.REDUCED_APR,
        months,
        Decimal(apr),
        min_dollars * 100,
        Decimal(fee),
    )


CATALOGUE: tuple[Plan, ...] = (
    _di(6, 200, "5.90"),
    _di(12, 200, "9.90"),
    _di(18, 1000, "11.90"),
    _di(24, 1000, "13.90"),
    _ra(24, "14.90", 1000, "7.90"),
    _ra(36, "15.90", 1000, "9.90"),
    _ra(48, "16.90", 2500, "10.90"),
    _ra(60, "17.90", 2500, "11.90"),
    Plan("STD", "Standard APR", PlanKind.STANDARD, 0, STANDARD_APR, 0, Decimal("2.50")),
)
BY_CODE: dict[str, Plan] = {plan.code: plan for plan in CATALOGUE}
# What a new practice offers until its administrator chooses.
DEFAULT_OFFERED: frozenset[str] = frozenset({"DI6", "DI12", "STD"})


def get(code: str) -> Plan | None:
    return BY_CODE.get(code)
