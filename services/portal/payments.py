"""Payments from the issuer's feed: they lower the balance and show in the payment history.

**Allocation rule** (the plan terms): a payment pays open promotional balances
first, the one whose promotion ends soonest first (so a deferred-interest
promotion is paid off before it expires; ties by purchase order); whatever is
left lowers the non-promotional (standard-APR) balance. A promotion paid to zero
is ``paid`` and its accrued deferred interest is dropped: never interest on a
paid-off promotion.

A payment may not exceed the balance (an overpayment is the issuer's to return).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.portal import ledger
from services.portal.errors import NotFound, ValidationError
from services.portal.store.models import Promotion


def post(
    session: Session, account_id: str, amount_cents: int, *, reference: str, now: datetime, by: str
) -> str:
    account = ledger.lock_account(session, account_id)
    if account is None:
        raise NotFound("account")
    if amount_cents > max(0, account.balance_cents):
        raise ValidationError({"amount_cents": f"is more than the balance ({account.balance_cents} cents)"})
    payment_id = ledger.post(
        session,
        account,
        "payment",
        amount_cents,
        occurred_at=now,
        description=(f"Payment {reference}" if reference else "Payment")[:200],
        created_by=by,
    )
    left = amount_cents
    promotions = session.scalars(
        select(Promotion)
        .where(Promotion.account_id == account_id, Promotion.status == "open", Promotion.balance_cents > 0)
        .order_by(Promotion.ends_on, Promotion.starts_on, Promotion.promotion_id)
    ).all()
    for promotion in promotions:
        if left <= 0:
            break
        paid = min(left, promotion.balance_cents)
        promotion.balance_cents -= paid
        left -= paid
        if promotion.balance_cents == 0:
            promotion.status = "paid"
            promotion.accrued_interest = Decimal(0)
    ledger.check(session, account)
    return payment_id
