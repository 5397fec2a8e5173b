"""A year of money for the demo practices (issue 7): refunds, voids, monthly payments, interest
and the daily deposits, on top of the first purchases :mod:`services.portal.demo` makes.

Everything goes through the money engine itself (:mod:`refunds`, :mod:`charges`,
:mod:`payments`, :mod:`interest`, :mod:`settlement`), day by day in date order,
so the ledger invariant and every rule hold for the demo data as for real data.
Deterministic: amounts, dates and times come from one ``random.Random``; only the
ids of the rows the engine writes are random.

Cardholders pay every other month (the demo's feed is bimonthly, to keep the seed
quick) and are of two kinds: about half pay their promotional balance off before
the promotion ends; the rest pay about 6 %, so some deferred-interest promotions
end unpaid and their interest is charged back to the purchase date. Interest is
accrued up to the day before each payment, refund or void, so every day accrues on
that day's balance, as the daily job would have.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.portal import charges, interest, ledger, payments, refunds, settlement
from services.portal.store.models import Account, Promotion, Transaction

SEED = 20261127
BY = "demo-seed"
REFUND_SHARE = 0.12
VOID_SHARE = 0.03
PAYS_OFF_SHARE = 0.5


@dataclass(frozen=True)
class MoneyYear:
    refunds: int
    voids: int
    payments: int
    interest_rows: int
    deposits: int


def _at(day: date, rng: random.Random, start_hour: int = 8) -> datetime:
    return datetime.combine(
        day, time(rng.randrange(start_hour, 18), rng.randrange(60), rng.randrange(60)), UTC
    )


def _payment(session: Session, account: Account, pays_off: bool, day: date) -> int:
    """This payment (one every two months): what clears the promotions before they end, or ~6 %
    of the balance (at least $50)."""
    balance = account.balance_cents
    if balance <= 0:
        return 0
    if pays_off:
        open_promotions = session.scalars(
            select(Promotion).where(
                Promotion.account_id == account.account_id,
                Promotion.status == "open",
                Promotion.balance_cents > 0,
            )
        ).all()
        due = 0
        for promotion in open_promotions:
            months_left = max(1, (promotion.ends_on - day).days // 61)  # payments left
            due += -(-promotion.balance_cents // months_left)
        amount = max(due, balance // 12, 50_00)
    else:
        amount = max(balance * 6 // 100, 50_00)
    return min(balance, -(-amount // 100) * 100)  # whole dollars, never more than owed


def _accrue(session: Session, account_id: str, through: date) -> int:
    """Interest up to ``through`` before the balance changes, so each day accrues on that day's
    balance (the daily job would have); returns the interest rows posted."""
    account = ledger.lock_account(session, account_id)
    if account is None or account.status != "active":
        return 0
    return interest.accrue_account(session, account, through)[0]


def seed_year(session: Session, practice_ids: tuple[str, ...], today: date) -> MoneyYear:
    rng = random.Random(SEED)  # noqa: S311 - demo data must repeat; nothing secret is drawn
    first_day = today - timedelta(days=365)
    charged = session.scalars(
        select(Transaction)
        .where(Transaction.kind == "charge", Transaction.practice_id.in_(practice_ids))
        .order_by(Transaction.occurred_at, Transaction.account_id)
    ).all()
    # What happens on which day, decided up front (in a fixed order).
    voids: dict[date, list[Transaction]] = {}
    refund_plan: dict[date, list[tuple[Transaction, int]]] = {}
    for tx in charged:
        day = tx.occurred_at.date()
        draw = rng.random()
        if draw < VOID_SHARE:
            voids.setdefault(day, []).append(tx)
        elif draw < VOID_SHARE + REFUND_SHARE:
            later = day + timedelta(days=rng.randrange(2, 40))
            if later < today:
                amount = max(100, tx.amount_cents * rng.choice((10, 25, 50, 100)) // 100 // 100 * 100)
                refund_plan.setdefault(later, []).append((tx, amount))
    accounts = sorted({tx.account_id for tx in charged})
    payer = {account_id: (rng.random() < PAYS_OFF_SHARE, rng.randrange(1, 29)) for account_id in accounts}
    parity = {account_id: rng.randrange(2) for account_id in accounts}  # payments every other month
    first_charge = {}
    for tx in charged:
        first_charge.setdefault(tx.account_id, tx.occurred_at.date())

    # Interest starts with the first purchase (the demo inserts purchases with their dates).
    for account_id, day in first_charge.items():
        account = session.get(Account, account_id)
        if account is not None:
            account.interest_through = max(account.opened_at.date(), day - timedelta(days=1))
    money_days = {tx.occurred_at.date() for tx in charged} | set(voids) | set(refund_plan)

    counts = {"refunds": 0, "voids": 0, "payments": 0, "interest_rows": 0, "deposits": 0}
    day = first_day
    while day < today:
        for tx in voids.get(day, []):
            counts["interest_rows"] += _accrue(session, tx.account_id, day - timedelta(days=1))
            charges.void(session, str(tx.practice_id), tx.transaction_id, now=_at(day, rng, 17), by=BY)
            counts["voids"] += 1
        for tx, amount in refund_plan.get(day, []):
            left = refunds.refundable_cents(session, tx.transaction_id, tx.amount_cents)
            if left > 0:
                counts["interest_rows"] += _accrue(session, tx.account_id, day - timedelta(days=1))
                refunds.refund(
                    session,
                    str(tx.practice_id),
                    tx.transaction_id,
                    min(amount, left),
                    reason="Treatment adjusted",
                    now=_at(day, rng),
                    by=BY,
                )
                counts["refunds"] += 1
        for account_id in accounts:
            pays_off, pay_day = payer[account_id]
            if day.day != pay_day or day.month % 2 != parity[account_id]:
                continue
            if day <= first_charge[account_id] + timedelta(days=20):
                continue
            counts["interest_rows"] += _accrue(session, account_id, day - timedelta(days=1))
            account = session.get(Account, account_id)
            if account is None or account.status != "active":
                continue
            amount = _payment(session, account, pays_off, day)
            if amount > 0:
                payments.post(
                    session, account_id, amount, reference=f"feed-{day:%Y%m%d}", now=_at(day, rng), by=BY
                )
                counts["payments"] += 1
        if day in money_days:  # a day without charges, refunds or voids deposits nothing
            counts["deposits"] += settlement.settle(
                session, day, now=datetime.combine(day + timedelta(days=1), time(2), UTC)
            ).deposits
        day += timedelta(days=1)
    counts["interest_rows"] += interest.run(session, today - timedelta(days=1)).interest_rows
    return MoneyYear(**counts)
