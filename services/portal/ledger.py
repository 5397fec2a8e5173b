"""The account ledger: the one place a balance changes.

Rules (issue 7, SECURITY.md §O):

- Money is integer cents everywhere (database, JSON, forms after parsing). Rates
  are ``Decimal`` percentages. **Rounding is stated once, here:** every
  ``Decimal`` amount becomes cents with :data:`ROUNDING` = ``ROUND_HALF_EVEN``
  (banker's rounding) in :func:`to_cents`, and nowhere else.
- Ledger rows (``transactions``) are immutable: amounts positive, direction by
  ``kind``. A mistake is reversed by a new row (a refund or a void naming the
  charge in ``related_id``), never by editing one; the database refuses UPDATE
  and DELETE on the table (triggers).
- The account invariant, after every operation::

      balance = charges − voids − refunds − payments + interest

  (a void is the reversal of a whole charge before settlement). :func:`post` is
  the only writer of ``accounts.balance_cents`` and :func:`check` verifies the
  sum before each money transaction commits.
- Available credit = limit − balance − open holds, never below zero.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from services.portal.store.models import Account, Hold, Transaction

ROUNDING = ROUND_HALF_EVEN
CENT = Decimal(1)

# +1 raises the balance (the cardholder owes more), −1 lowers it.
SIGN: dict[str, int] = {"charge": 1, "interest": 1, "refund": -1, "void": -1, "payment": -1}


class InvariantBroken(RuntimeError):
    """The stored balance is not the ledger's sum: the transaction must roll back."""


def new_id(prefix: str) -> str:
    """An opaque id (same shape as the service layer's)."""
    return f"{prefix}_{secrets.randbits(64):016x}"


def to_cents(amount: Decimal) -> int:
    """The one rounding rule: a ``Decimal`` number of cents to whole cents, half to even."""
    return int(amount.quantize(CENT, rounding=ROUNDING))


def percent_of(cents: int, rate_percent: Decimal) -> int:
    """``rate_percent`` % of ``cents``, rounded by :func:`to_cents` (merchant fees)."""
    return to_cents(Decimal(cents) * rate_percent / Decimal(100))


def available_credit(limit_cents: int, balance_cents: int, held_cents: int = 0) -> int:
    """Limit − balance − holds; never negative (a balance over the limit leaves nothing)."""
    return max(0, limit_cents - balance_cents - held_cents)


def lock_account(session: Session, account_id: str) -> Account | None:
    """The account row, locked until commit (``SELECT … FOR UPDATE``; SQLite's BEGIN IMMEDIATE
    already holds the one write lock). Every balance change takes this lock first."""
    return session.scalars(
        select(Account).where(Account.account_id == account_id).with_for_update()
    ).one_or_none()


def held_cents(session: Session, account_id: str, now: datetime) -> int:
    """Open authorization-only holds that have not expired."""
    total = session.scalar(
        select(func.coalesce(func.sum(Hold.amount_cents), 0)).where(
            Hold.account_id == account_id, Hold.status == "open", Hold.expires_at > now
        )
    )
    return int(total or 0)


def post(
    session: Session,
    account: Account,
    kind: str,
    amount_cents: int,
    *,
    occurred_at: datetime,
    practice_id: str | None = None,
    location_id: str | None = None,
    plan_code: str | None = None,
    description: str = "",
    authorization_code: str | None = None,
    related_id: str | None = None,
    treatment_date: object = None,
    disclosure: str = "",
    created_by: str = "",
    transaction_id: str | None = None,
) -> str:
    """Append one ledger row and move the (locked) account's balance with it; returns its id."""
    if kind not in SIGN:
        raise ValueError(kind)
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError("amount_cents must be a positive integer")
    transaction_id = transaction_id or new_id("txn")
    session.execute(
        insert(Transaction).values(
            transaction_id=transaction_id,
            account_id=account.account_id,
            practice_id=practice_id,
            location_id=location_id,
            kind=kind,
            amount_cents=amount_cents,
            plan_code=plan_code,
            description=description[:200],
            authorization_code=authorization_code,
            occurred_at=occurred_at,
            created_at=occurred_at,
            related_id=related_id,
            treatment_date=treatment_date,
            disclosure=disclosure,
            created_by=created_by[:64],
        )
    )
    account.balance_cents = account.balance_cents + SIGN[kind] * amount_cents
    return transaction_id


def ledger_sum(session: Session, account_id: str) -> int:
    """charges − voids − refunds − payments + interest, from the rows themselves."""
    total = 0
    for kind, amount in session.execute(
        select(Transaction.kind, func.sum(Transaction.amount_cents))
        .where(Transaction.account_id == account_id)
        .group_by(Transaction.kind)
    ).all():
        total += SIGN[kind] * int(amount)
    return total


def check(session: Session, account: Account) -> None:
    """Raise :class:`InvariantBroken` unless the stored balance equals the ledger's sum."""
    session.flush()
    expected = ledger_sum(session, account.account_id)
    if account.balance_cents != expected:
        raise InvariantBroken(
            f"account {account.account_id}: balance {account.balance_cents} != ledger {expected}"
        )
