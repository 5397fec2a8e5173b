"""Daily interest: ``providerctl portal accrue-interest [--date D]``, driven by an injected date.

For each active account, for each day after ``interest_through`` up to the run's
date (a missed day is caught up, a repeated run does nothing):

1. Promotions whose end date has passed close first: one paid to zero is
   ``paid`` (its deferred interest dropped — never interest on a paid-off
   promotion); a deferred-interest promotion with a balance left is
   ``expired`` and its accrued deferred interest — interest at the standard APR
   on its daily balance since the purchase date — is posted at once; a
   reduced-APR one left unpaid simply joins the standard balance.
2. Interest accrues for the day, exactly (``Decimal``, no rounding):
   daily rate = APR ÷ 100 ÷ :data:`DAYS_PER_YEAR`;
   open deferred-interest promotions accrue *deferred* interest on their balance;
   open reduced-APR promotions accrue at their plan's APR;
   the rest of the balance (balance − open promotional balances, if positive)
   at the account's standard APR.
3. On the last day of a month the account's accrued interest is posted as one
   ``interest`` ledger row, rounded by :func:`ledger.to_cents` (half to even);
   the sub-cent remainder carries over.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.portal import ledger, plans
from services.portal.store.models import Account, Promotion

DAYS_PER_YEAR = Decimal(365)


def daily_rate(apr_percent: Decimal) -> Decimal:
    return Decimal(apr_percent) / Decimal(100) / DAYS_PER_YEAR


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), UTC)


@dataclass(frozen=True)
class RunResult:
    accounts: int
    interest_rows: int
    interest_cents: int
    expired_promotions: int


def accrue_account(session: Session, account: Account, through: date) -> tuple[int, int, int]:
    """Bring one (locked) account's interest up to ``through``; returns (rows, cents, expired)."""
    start = account.interest_through or account.opened_at.date()
    day = start + timedelta(days=1)
    rows = cents = expired = 0
    if day > through:
        return rows, cents, expired
    promotions = list(
        session.scalars(
            select(Promotion)
            .where(Promotion.account_id == account.account_id, Promotion.status == "open")
            .order_by(Promotion.ends_on)
        ).all()
    )
    accrued = Decimal(account.accrued_interest or 0)
    while day <= through:
        for promotion in promotions:
            if promotion.status != "open" or day <= promotion.ends_on:
                continue
            if promotion.balance_cents <= 0:
                promotion.status = "paid"
                promotion.accrued_interest = Decimal(0)
                continue
            promotion.status = "expired"
            expired += 1
            plan = plans.get(promotion.plan_code)
            if plan is not None and plan.kind is plans.PlanKind.DEFERRED_INTEREST:
                deferred = ledger.to_cents(Decimal(promotion.accrued_interest or 0))
                if deferred > 0:
                    ledger.post(
                        session,
                        account,
                        "interest",
                        deferred,
                        occurred_at=_end_of_day(day),
                        description=f"Deferred interest since {promotion.starts_on.isoformat()}",
                        created_by="accrue-interest",
                    )
                    rows, cents = rows + 1, cents + deferred
            promotion.accrued_interest = Decimal(0)
        promotional = 0
        for promotion in promotions:
            if promotion.status != "open" or promotion.balance_cents <= 0:
                continue
            promotional += promotion.balance_cents
            plan = plans.get(promotion.plan_code)
            if plan is not None and plan.kind is plans.PlanKind.DEFERRED_INTEREST:
                promotion.accrued_interest = Decimal(promotion.accrued_interest or 0) + Decimal(
                    promotion.balance_cents
                ) * daily_rate(plans.STANDARD_APR)
            else:
                accrued += Decimal(promotion.balance_cents) * daily_rate(Decimal(promotion.apr))
        standard = account.balance_cents - promotional
        if standard > 0:
            accrued += Decimal(standard) * daily_rate(Decimal(account.apr))
        if day.day == monthrange(day.year, day.month)[1]:
            posted = ledger.to_cents(accrued)
            if posted > 0:
                ledger.post(
                    session,
                    account,
                    "interest",
                    posted,
                    occurred_at=_end_of_day(day),
                    description=f"Interest charge {day.strftime('%B %Y')}",
                    created_by="accrue-interest",
                )
                rows, cents = rows + 1, cents + posted
                accrued -= posted
        day += timedelta(days=1)
    account.accrued_interest = accrued
    account.interest_through = through
    ledger.check(session, account)
    return rows, cents, expired


def run(session: Session, through: date) -> RunResult:
    """Accrue for every active account (each locked in turn) up to ``through``."""
    ids = session.scalars(
        select(Account.account_id).where(Account.status == "active").order_by(Account.account_id)
    ).all()
    rows = cents = expired = 0
    for account_id in ids:
        account = ledger.lock_account(session, account_id)
        assert account is not None
        r, c, e = accrue_account(session, account, through)
        rows, cents, expired = rows + r, cents + c, expired + e
    return RunResult(len(ids), rows, cents, expired)
