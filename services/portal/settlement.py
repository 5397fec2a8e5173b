"""Settlement: ``providerctl portal settle [--date D]`` turns each practice's unsettled charges and
refunds up to the end of day D into one deposit for D (the daily funding report).

deposit = charges − refunds − merchant fees, where the fee of a charge is its plan's
``merchant_fee_rate`` % of it and a refund gives back the same rate of what it
returns (each rounded once by :func:`ledger.to_cents`). A voided charge and its
void settle together for nothing. Each ledger row is settled at most once
(``deposit_items`` primary key); a second run for the same day adds nothing.
Accounts are locked before the rows are read again, so a void racing the
settlement either lands first (and the pair settles for nothing) or finds the
charge settled and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from services.portal import ledger, plans
from services.portal.store.models import Deposit, DepositItem, Transaction


@dataclass(frozen=True)
class SettleResult:
    deposits: int
    items: int
    net_cents: int


def fee_cents(plan_code: str | None, amount_cents: int) -> int:
    plan = plans.get(plan_code or "")
    rate = plan.merchant_fee_rate if plan is not None else Decimal(0)
    return ledger.percent_of(amount_cents, rate)


def _unsettled(session: Session, cutoff: datetime) -> list[Transaction]:
    return list(
        session.scalars(
            select(Transaction)
            .outerjoin(DepositItem, DepositItem.transaction_id == Transaction.transaction_id)
            .where(
                DepositItem.transaction_id.is_(None),
                Transaction.practice_id.is_not(None),
                Transaction.kind.in_(("charge", "refund", "void")),
                Transaction.occurred_at < cutoff,
            )
            .order_by(Transaction.practice_id, Transaction.occurred_at, Transaction.transaction_id)
        ).all()
    )


def settle(session: Session, business_date: date, *, now: datetime) -> SettleResult:
    cutoff = datetime.combine(business_date + timedelta(days=1), time(0), UTC)
    for account_id in sorted({tx.account_id for tx in _unsettled(session, cutoff)}):
        ledger.lock_account(session, account_id)
    rows = _unsettled(session, cutoff)
    voided = {tx.related_id for tx in rows if tx.kind == "void"}
    by_practice: dict[str, list[Transaction]] = {}
    for tx in rows:
        by_practice.setdefault(str(tx.practice_id), []).append(tx)
    deposits = items = net_total = 0
    for practice_id, txs in by_practice.items():
        exists = session.scalar(
            select(Deposit.deposit_id).where(
                Deposit.practice_id == practice_id, Deposit.business_date == business_date
            )
        )
        if exists:
            continue
        charged = refunded = fees = 0
        lines: list[tuple[str, int]] = []
        for tx in txs:
            if tx.kind == "void" or (tx.kind == "charge" and tx.transaction_id in voided):
                lines.append((tx.transaction_id, 0))
            elif tx.kind == "charge":
                fee = fee_cents(tx.plan_code, tx.amount_cents)
                charged, fees = charged + tx.amount_cents, fees + fee
                lines.append((tx.transaction_id, fee))
            else:
                fee = fee_cents(tx.plan_code, tx.amount_cents)
                refunded, fees = refunded + tx.amount_cents, fees - fee
                lines.append((tx.transaction_id, -fee))
        deposit_id = ledger.new_id("dep")
        net = charged - refunded - fees
        session.execute(
            insert(Deposit).values(
                deposit_id=deposit_id,
                practice_id=practice_id,
                business_date=business_date,
                charges_cents=charged,
                refunds_cents=refunded,
                fees_cents=fees,
                net_cents=net,
                items=len(lines),
                created_at=now,
            )
        )
        for transaction_id, fee in lines:
            session.execute(
                insert(DepositItem).values(
                    transaction_id=transaction_id, deposit_id=deposit_id, fee_cents=fee
                )
            )
        deposits, items, net_total = deposits + 1, items + len(lines), net_total + net
    return SettleResult(deposits, items, net_total)
