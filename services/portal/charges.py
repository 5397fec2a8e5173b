"""Charges, authorization-only holds and voids, on a locked account (the service layer wraps them).

A **charge** puts a treatment on the cardholder's account on one of the plans the
practice offers. It is refused (nothing written) unless the account is active,
the plan is offered, the amount meets the plan's minimum purchase and the
available credit (limit − balance − open holds) covers it. It gets a six
character authorization code and stores the plan's disclosure text exactly as
shown to the patient. A promotional plan opens a promotional balance that ends
``months`` after the purchase date.

An **authorization-only hold** reserves credit the same way without moving the
balance; a later charge naming the hold completes it (for at most the held
amount, releasing the hold's reservation in the same transaction), and an
unused hold simply stops counting at ``expires_at`` (:data:`HOLD_DAYS`).

A **void** reverses a whole charge before it is settled into a deposit and
before any refund of it: a ``void`` ledger row, never an edit.
"""

from __future__ import annotations

import secrets
import string
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from services.portal import ledger, plans
from services.portal.errors import NotFound, ValidationError
from services.portal.store.models import Account, DepositItem, Hold, Promotion, Transaction

HOLD_DAYS = 7
CODE_ALPHABET = string.ascii_uppercase + string.digits


def authorization_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


@dataclass(frozen=True)
class ChargeRequest:
    account_id: str
    location_id: str
    plan_code: str
    amount_cents: int
    description: str
    treatment_date: date
    hold_id: str | None = None


def _checked_plan(plan_code: str, offered: frozenset[str], amount_cents: int) -> plans.Plan:
    plan = plans.get(plan_code)
    if plan is None or plan_code not in offered:
        raise NotFound("plan")
    if amount_cents < plan.min_purchase_cents:
        raise ValidationError(
            {"amount_cents": f"is below the plan's minimum purchase of {plan.min_purchase_cents} cents"}
        )
    return plan


def _checked_account(account: Account | None) -> Account:
    if account is None:
        raise NotFound("account")
    if account.status != "active":
        raise ValidationError({"account_id": f"the account is {account.status}, not active"})
    return account


def _check_credit(
    session: Session, account: Account, amount_cents: int, now: datetime, *, release: int = 0
) -> None:
    held = ledger.held_cents(session, account.account_id, now) - release
    available = ledger.available_credit(account.credit_limit_cents, account.balance_cents, held)
    if amount_cents > available:
        raise ValidationError({"amount_cents": f"is more than the available credit ({available} cents)"})


def authorize(
    session: Session,
    request: ChargeRequest,
    *,
    practice_id: str,
    offered: frozenset[str],
    now: datetime,
    by: str,
) -> Hold:
    """An authorization-only hold: checks like a charge, reserves credit, moves no balance."""
    _checked_plan(request.plan_code, offered, request.amount_cents)
    account = _checked_account(ledger.lock_account(session, request.account_id))
    _check_credit(session, account, request.amount_cents, now)
    hold = Hold(
        hold_id=ledger.new_id("hld"),
        account_id=account.account_id,
        practice_id=practice_id,
        location_id=request.location_id,
        plan_code=request.plan_code,
        amount_cents=request.amount_cents,
        description=request.description,
        authorization_code=authorization_code(),
        status="open",
        created_at=now,
        expires_at=now + timedelta(days=HOLD_DAYS),
        created_by=by[:64],
    )
    session.add(hold)
    session.flush()
    return hold


def charge(
    session: Session,
    request: ChargeRequest,
    *,
    practice_id: str,
    offered: frozenset[str],
    now: datetime,
    by: str,
) -> str:
    """Charge the account; returns the ledger row's id. Completes ``request.hold_id`` if given."""
    plan = _checked_plan(request.plan_code, offered, request.amount_cents)
    account = _checked_account(ledger.lock_account(session, request.account_id))
    hold = None
    release = 0
    if request.hold_id:
        hold = session.scalars(
            select(Hold).where(
                Hold.hold_id == request.hold_id,
                Hold.practice_id == practice_id,
                Hold.account_id == account.account_id,
            )
        ).one_or_none()
        if hold is None:
            raise NotFound("hold")
        if hold.status != "open" or hold.expires_at <= now:
            raise ValidationError({"hold_id": "the hold is no longer open (completed, voided or expired)"})
        if request.amount_cents > hold.amount_cents:
            raise ValidationError({"amount_cents": "is more than the hold it completes"})
        release = hold.amount_cents
    _check_credit(session, account, request.amount_cents, now, release=release)
    code = hold.authorization_code if hold is not None else authorization_code()
    transaction_id = ledger.post(
        session,
        account,
        "charge",
        request.amount_cents,
        occurred_at=now,
        practice_id=practice_id,
        location_id=request.location_id,
        plan_code=plan.code,
        description=request.description,
        authorization_code=code,
        treatment_date=request.treatment_date,
        disclosure=plan.disclosure(),
        created_by=by,
    )
    if hold is not None:
        hold.status = "completed"
        hold.charge_id = transaction_id
    if plan.is_promotional:
        starts = now.date()
        session.execute(
            insert(Promotion).values(
                promotion_id=ledger.new_id("prm"),
                account_id=account.account_id,
                transaction_id=transaction_id,
                plan_code=plan.code,
                original_cents=request.amount_cents,
                balance_cents=request.amount_cents,
                starts_on=starts,
                ends_on=add_months(starts, plan.months),
                status="open",
                apr=plan.apr,
            )
        )
    ledger.check(session, account)
    return transaction_id


def own_charge(session: Session, practice_id: str, transaction_id: str) -> Transaction:
    """The practice's own charge, or :class:`NotFound` (another practice's looks like none)."""
    tx = session.scalars(
        select(Transaction).where(
            Transaction.transaction_id == transaction_id,
            Transaction.practice_id == practice_id,
            Transaction.kind == "charge",
        )
    ).one_or_none()
    if tx is None:
        raise NotFound("transaction")
    return tx


def reversed_cents(session: Session, charge_id: str) -> tuple[int, int]:
    """(refunded, voided) so far against one charge."""
    rows = dict(
        session.execute(
            select(Transaction.kind, func.sum(Transaction.amount_cents))
            .where(Transaction.related_id == charge_id)
            .group_by(Transaction.kind)
        ).all()
    )
    return int(rows.get("refund") or 0), int(rows.get("void") or 0)


def is_settled(session: Session, transaction_id: str) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(DepositItem).where(DepositItem.transaction_id == transaction_id)
        )
    )


def reduce_promotion(session: Session, charge_id: str, amount_cents: int, *, void: bool = False) -> None:
    """A refund or void of a promotional charge takes its amount off that promotion's balance."""
    promotion = session.scalars(select(Promotion).where(Promotion.transaction_id == charge_id)).one_or_none()
    if promotion is None or promotion.status not in {"open"}:
        return
    promotion.balance_cents = max(0, promotion.balance_cents - amount_cents)
    if void:
        promotion.status = "void"
        promotion.balance_cents = 0
        promotion.accrued_interest = 0  # type: ignore[assignment]
    elif promotion.balance_cents == 0:
        promotion.status = "paid"
        promotion.accrued_interest = 0  # type: ignore[assignment]


def void(session: Session, practice_id: str, charge_id: str, *, now: datetime, by: str) -> str:
    """Reverse a whole, unsettled, unrefunded charge; returns the void row's id."""
    tx = own_charge(session, practice_id, charge_id)
    account = ledger.lock_account(session, tx.account_id)
    assert account is not None
    refunded, voided = reversed_cents(session, charge_id)
    if voided:
        raise ValidationError({"transaction_id": "the charge is already voided"})
    if refunded:
        raise ValidationError({"transaction_id": "the charge has refunds; refund the rest instead"})
    if is_settled(session, charge_id):
        raise ValidationError({"transaction_id": "the charge is settled; refund it instead"})
    void_id = ledger.post(
        session,
        account,
        "void",
        tx.amount_cents,
        occurred_at=now,
        practice_id=practice_id,
        location_id=tx.location_id,
        plan_code=tx.plan_code,
        description=f"Void of {tx.authorization_code}",
        related_id=charge_id,
        created_by=by,
    )
    reduce_promotion(session, charge_id, tx.amount_cents, void=True)
    ledger.check(session, account)
    return void_id
