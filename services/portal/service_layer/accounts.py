"""Cardholder accounts as a practice sees them: its list, one account, the look-up at the desk.

Which accounts a practice sees (the tenancy rule, in :func:`visible`): those it
applied for, transacted with, or looked up — a row in ``practice_accounts``.
Anything else is :class:`NotFound`, exactly like an id that does not exist.

The look-up finds any cardholder by account number + ZIP, or by first and last
name + date of birth + ZIP (the patient at the desk); a match links the account
to the practice and is audited. Numbers are masked to the last four everywhere.

What a practice sees of an account: status, limit, balance, available credit,
every promotional balance with its end date, and the payment history (account
level). Of the transactions, its own charges and refunds in full; another
practice's appear as "Purchase at another provider", without description or
location — one provider's treatments are not another's business.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, insert, select
from sqlalchemy.orm import Session

from services.common.db import transaction
from services.portal import cards, plans
from services.portal.errors import NotFound, TooManyRequests, ValidationError
from services.portal.permissions import Actor, Permission
from services.portal.service_layer import inputs
from services.portal.service_layer.unit import Deps, Page, count_rows, guard, new_id
from services.portal.store.models import (
    Account,
    Cardholder,
    Location,
    PracticeAccount,
    Promotion,
    Transaction,
)
from services.portal.validation import parse


def available_credit(limit_cents: int, balance_cents: int) -> int:
    """Never negative: a balance above the limit (interest, say) leaves nothing, not less."""
    return max(0, limit_cents - balance_cents)


@dataclass(frozen=True)
class AccountSummary:
    account_id: str
    masked_number: str
    last_four: str
    holder_name: str
    status: str
    credit_limit_cents: int
    balance_cents: int
    available_credit_cents: int
    opened_on: date


@dataclass(frozen=True)
class PromotionView:
    plan_code: str
    plan_name: str
    original_cents: int
    balance_cents: int
    starts_on: date
    ends_on: date
    ours: bool


@dataclass(frozen=True)
class TransactionView:
    transaction_id: str
    kind: str
    amount_cents: int
    occurred_at: datetime
    description: str
    plan_code: str | None
    location_name: str | None
    authorization_code: str | None
    ours: bool


@dataclass(frozen=True)
class AccountDetail:
    summary: AccountSummary
    apr: Decimal
    holder_city: str
    holder_state: str
    holder_zip: str
    link_reason: str
    promotions: tuple[PromotionView, ...]
    payments: tuple[TransactionView, ...]
    transactions: tuple[TransactionView, ...]


def visible(practice_id: str) -> Select[Any]:
    """Accounts (with their holder) the practice may see; every account query starts here."""
    return (
        select(Account, Cardholder, PracticeAccount.reason)
        .join(Cardholder, Cardholder.cardholder_id == Account.cardholder_id)
        .join(
            PracticeAccount,
            and_(
                PracticeAccount.account_id == Account.account_id, PracticeAccount.practice_id == practice_id
            ),
        )
    )


def _summary(account: Account, holder: Cardholder) -> AccountSummary:
    return AccountSummary(
        account_id=account.account_id,
        masked_number=cards.masked(account.number),
        last_four=cards.last_four(account.number),
        holder_name=f"{holder.first_name} {holder.last_name}",
        status=account.status,
        credit_limit_cents=account.credit_limit_cents,
        balance_cents=account.balance_cents,
        available_credit_cents=available_credit(account.credit_limit_cents, account.balance_cents),
        opened_on=account.opened_at.date(),
    )


def link(session: Session, practice_id: str, account_id: str, reason: str, by: str, now: datetime) -> None:
    """Let the practice see the account from now on (idempotent; the first reason stays)."""
    exists = session.scalar(
        select(func.count())
        .select_from(PracticeAccount)
        .where(PracticeAccount.practice_id == practice_id, PracticeAccount.account_id == account_id)
    )
    if not exists:
        session.execute(
            insert(PracticeAccount).values(
                practice_id=practice_id,
                account_id=account_id,
                reason=reason,
                linked_at=now,
                linked_by=by[:64],
            )
        )


def open_account(
    session: Session,
    *,
    holder: dict[str, Any],
    credit_limit_cents: int,
    practice_id: str,
    opened_by: str,
    now: datetime,
    rng: random.Random | None = None,
) -> tuple[str, str]:
    """A new cardholder and active account at the standard APR, linked to the practice.

    Returns (account_id, full account number). Number collisions (one in a
    billion per pair) are retried.
    """
    cardholder_id = new_id("chd", rng)
    session.execute(insert(Cardholder).values(cardholder_id=cardholder_id, created_at=now, **holder))
    for _ in range(5):
        number = cards.new_number(rng)
        taken = session.scalar(select(func.count()).select_from(Account).where(Account.number == number))
        if not taken:
            break
    else:  # pragma: no cover - astronomically unlikely
        raise RuntimeError("could not find a free account number")
    account_id = new_id("acc", rng)
    session.execute(
        insert(Account).values(
            account_id=account_id,
            number=number,
            cardholder_id=cardholder_id,
            status="active",
            credit_limit_cents=credit_limit_cents,
            balance_cents=0,
            apr=plans.STANDARD_APR,
            opened_at=now,
            opened_by_practice_id=practice_id,
        )
    )
    link(session, practice_id, account_id, "applied", opened_by, now)
    return account_id, number


def _transactions(session: Session, practice_id: str, account_id: str) -> tuple[TransactionView, ...]:
    rows = session.execute(
        select(Transaction, Location.name)
        .outerjoin(Location, Location.location_id == Transaction.location_id)
        .where(Transaction.account_id == account_id)
        .order_by(Transaction.occurred_at.desc(), Transaction.transaction_id)
        .limit(200)
    ).all()
    views = []
    for tx, location_name in rows:
        ours = tx.practice_id == practice_id
        elsewhere = tx.practice_id is not None and not ours
        views.append(
            TransactionView(
                transaction_id=tx.transaction_id if not elsewhere else "",
                kind=tx.kind,
                amount_cents=tx.amount_cents,
                occurred_at=tx.occurred_at,
                description=(
                    "Purchase at another provider"
                    if elsewhere and tx.kind == "charge"
                    else ("Refund at another provider" if elsewhere else tx.description)
                ),
                plan_code=tx.plan_code,
                location_name=location_name if ours else None,
                authorization_code=tx.authorization_code if ours else None,
                ours=ours,
            )
        )
    return tuple(views)


class AccountService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def list(self, actor: Actor, query: Any, *, text: bool = False) -> Page[AccountSummary]:
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "account.list", "account")
        values = parse(inputs.ACCOUNT_LIST, query, text=text)
        statement = visible(actor.practice_id)
        if values["status"]:
            statement = statement.where(Account.status == values["status"])
        if values["q"]:
            term = values["q"].lower()
            digits = cards.normalize(term)
            condition = func.lower(Cardholder.first_name + " " + Cardholder.last_name).contains(
                term, autoescape=True
            )
            condition = condition | func.lower(Cardholder.last_name).contains(term, autoescape=True)
            if digits.isdigit() and len(digits) == 4:
                condition = condition | Account.number.endswith(digits)
            statement = statement.where(condition)
        page, per_page = values["page"], values["per_page"]
        with transaction(self.deps.db) as session:
            total, at_least = count_rows(session, statement, page, per_page)
            rows = session.execute(
                statement.order_by(Cardholder.last_name, Cardholder.first_name, Account.account_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
            items = [_summary(account, holder) for account, holder, _reason in rows]
            self.deps.audit.append(
                session,
                actor,
                "account.list",
                object_type="account",
                detail=f"page {page}, {len(items)} of {total} shown",
            )
        return Page(items, page, per_page, total, at_least)

    def get(self, actor: Actor, account_id: str) -> AccountDetail:
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "account.view", "account", account_id)
        with transaction(self.deps.db) as session:
            row = session.execute(
                visible(actor.practice_id).where(Account.account_id == account_id)
            ).one_or_none()
            if row is None:
                self.deps.audit.append(
                    session,
                    actor,
                    "account.view",
                    object_type="account",
                    object_id=account_id,
                    outcome="not_found",
                )
                detail = None
            else:
                account, holder, reason = row
                promotions = session.execute(
                    select(Promotion, Transaction.practice_id)
                    .join(Transaction, Transaction.transaction_id == Promotion.transaction_id)
                    .where(Promotion.account_id == account_id)
                    .order_by(Promotion.ends_on)
                ).all()
                transactions = _transactions(session, actor.practice_id, account_id)
                detail = AccountDetail(
                    summary=_summary(account, holder),
                    apr=account.apr,
                    holder_city=holder.city,
                    holder_state=holder.state,
                    holder_zip=holder.zip[:5],
                    link_reason=reason,
                    promotions=tuple(
                        PromotionView(
                            p.plan_code,
                            plans.BY_CODE[p.plan_code].name if p.plan_code in plans.BY_CODE else p.plan_code,
                            p.original_cents,
                            p.balance_cents,
                            p.starts_on,
                            p.ends_on,
                            tx_practice == actor.practice_id,
                        )
                        for p, tx_practice in promotions
                    ),
                    payments=tuple(t for t in transactions if t.kind == "payment"),
                    transactions=transactions,
                )
                self.deps.audit.append(
                    session, actor, "account.view", object_type="account", object_id=account_id
                )
        if detail is None:
            raise NotFound("account")
        return detail

    def transactions(self, actor: Actor, account_id: str) -> tuple[TransactionView, ...]:
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "account.transactions", "account", account_id)
        with transaction(self.deps.db) as session:
            found = session.execute(
                visible(actor.practice_id).where(Account.account_id == account_id)
            ).one_or_none()
            outcome = "ok" if found else "not_found"
            views = _transactions(session, actor.practice_id, account_id) if found else ()
            self.deps.audit.append(
                session,
                actor,
                "account.transactions",
                object_type="account",
                object_id=account_id,
                outcome=outcome,
            )
        if not found:
            raise NotFound("account")
        return views

    def lookup(self, actor: Actor, data: Any, *, text: bool = False) -> Sequence[AccountSummary]:
        """Find the patient's account(s); each match is linked to the practice and audited."""
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "account.lookup", "account")
        values = parse(inputs.LOOKUP, data, text=text)
        wait = self.deps.lookup_throttle.hit(f"lookup:{actor.practice_id}:{actor.sub}")
        if wait is not None:
            with transaction(self.deps.db) as session:
                self.deps.audit.append(
                    session, actor, "account.lookup", object_type="account", outcome="throttled"
                )
            raise TooManyRequests(wait)
        by_number = values["account_number"] is not None
        by_identity = any(values[name] is not None for name in ("first_name", "last_name", "date_of_birth"))
        if values["zip"] is None:
            raise ValidationError({"zip": "is required for a look-up"})
        if by_number == by_identity:
            raise ValidationError(
                {"account_number": "give the account number, or first name, last name and date of birth"}
            )
        zip5 = values["zip"][:5]
        statement = select(Account, Cardholder).join(
            Cardholder, Cardholder.cardholder_id == Account.cardholder_id
        )
        if by_number:
            number = cards.normalize(values["account_number"])
            if not cards.is_valid(number):
                raise ValidationError({"account_number": "is not a valid account number (check the digits)"})
            statement = statement.where(Account.number == number)
        else:
            missing = {
                n: "is required" for n in ("first_name", "last_name", "date_of_birth") if values[n] is None
            }
            if missing:
                raise ValidationError(missing)
            statement = statement.where(
                func.lower(Cardholder.first_name) == values["first_name"].lower(),
                func.lower(Cardholder.last_name) == values["last_name"].lower(),
                Cardholder.date_of_birth == values["date_of_birth"],
            )
        now = self.deps.now()
        with transaction(self.deps.db) as session:
            rows = [
                (account, holder)
                for account, holder in session.execute(statement.order_by(Account.opened_at)).all()
                if holder.zip[:5] == zip5
            ]
            for account, _holder in rows:
                link(session, actor.practice_id, account.account_id, "lookup", actor.sub, now)
                self.deps.audit.append(
                    session,
                    actor,
                    "account.lookup",
                    object_type="account",
                    object_id=account.account_id,
                    detail="by account number and ZIP" if by_number else "by name, date of birth and ZIP",
                )
            if not rows:
                self.deps.audit.append(
                    session,
                    actor,
                    "account.lookup",
                    object_type="account",
                    outcome="no_match",
                    detail="by account number and ZIP" if by_number else "by name, date of birth and ZIP",
                )
            return [_summary(account, holder) for account, holder in rows]
