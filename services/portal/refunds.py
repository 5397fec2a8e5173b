"""Refunds: partial or full, never more than what is left of the charge.

"What is left" = the charge − its refunds − its void. It is computed after the
account row is locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serializes writers), so two refunds of one charge
racing each other see each other's result: the second one that would go over is
refused. A refund lowers the balance (restoring available credit) and, for a
promotional charge, that promotion's balance.

Refunds above the practice's ``refund_step_up_cents`` need a fresh second factor:
the token's ``auth_time`` no older than :data:`STEP_UP_MAX_AGE_S`. The portal
never checks a code itself: the service layer raises
:class:`~services.portal.errors.StepUpRequired`, the API answers per RFC 9470
and the pages send the browser to auth with ``max_age`` (and ``prompt=login``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services.portal import charges, ledger
from services.portal.errors import ValidationError

STEP_UP_MAX_AGE_S = 300


def needs_step_up(amount_cents: int, threshold_cents: int, auth_time: int, now_s: float) -> bool:
    """Over the practice's amount and the sign-in older than :data:`STEP_UP_MAX_AGE_S` (or unknown)."""
    if amount_cents <= threshold_cents:
        return False
    return not auth_time or now_s - auth_time > STEP_UP_MAX_AGE_S


def refundable_cents(session: Session, charge_id: str, charge_amount: int) -> int:
    refunded, voided = charges.reversed_cents(session, charge_id)
    return 0 if voided else charge_amount - refunded


def refund(
    session: Session,
    practice_id: str,
    charge_id: str,
    amount_cents: int,
    *,
    reason: str,
    now: datetime,
    by: str,
) -> str:
    """Refund part or all of the practice's charge; returns the refund row's id."""
    tx = charges.own_charge(session, practice_id, charge_id)
    account = ledger.lock_account(session, tx.account_id)  # the lock that makes racing refunds queue
    assert account is not None
    left = refundable_cents(session, charge_id, tx.amount_cents)
    if amount_cents > left:
        raise ValidationError(
            {"amount_cents": f"is more than is left to refund of this charge ({left} cents)"}
        )
    refund_id = ledger.post(
        session,
        account,
        "refund",
        amount_cents,
        occurred_at=now,
        practice_id=practice_id,
        location_id=tx.location_id,
        plan_code=tx.plan_code,
        description=(reason or f"Refund of {tx.authorization_code}")[:200],
        related_id=charge_id,
        authorization_code=tx.authorization_code,
        created_by=by,
    )
    charges.reduce_promotion(session, charge_id, amount_cents)
    ledger.check(session, account)
    return refund_id
