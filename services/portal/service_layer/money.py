"""Money actions (issue 7) as pages and the API offer them: charge, hold, void, refund, payments,
the transactions list and its CSV export, deposits; and the daily jobs (interest, settlement).

Every money action: permission first; input parsed (400 before anything else);
the ``Idempotency-Key`` claimed (:mod:`services.portal.idempotency`); the work
and its audit entry in one transaction, with the ledger invariant checked before
commit (:mod:`services.portal.ledger`); a refusal is audited too. The rules
themselves live in :mod:`charges`, :mod:`refunds`, :mod:`payments`,
:mod:`interest` and :mod:`settlement`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from services.common.db import transaction
from services.portal import cards, charges, idempotency, interest, ledger, payments, refunds, settlement
from services.portal.errors import Forbidden, NotFound, PortalError, StepUpRequired, ValidationError
from services.portal.permissions import Actor, Permission
from services.portal.service_layer import inputs
from services.portal.service_layer.accounts import link, visible
from services.portal.service_layer.plan_offers import offered_codes
from services.portal.service_layer.unit import Deps, Page, count_cap, count_rows, guard
from services.portal.store.models import (
    Account,
    Cardholder,
    Deposit,
    Hold,
    Location,
    Practice,
    Transaction,
)
from services.portal.validation import parse

PAYMENTS_SCOPE = "payments:post"
SYSTEM = Actor(sub="system", practice_id="", roles=(), name="scheduled job", channel="job")


@dataclass(frozen=True)
class MoneyResult:
    transaction_id: str
    kind: str
    account_id: str
    amount_cents: int
    plan_code: str | None
    authorization_code: str | None
    related_id: str | None
    disclosure: str
    occurred_at: datetime
    balance_cents: int
    available_credit_cents: int
    refundable_cents: int


@dataclass(frozen=True)
class HoldView:
    hold_id: str
    account_id: str
    amount_cents: int
    plan_code: str
    authorization_code: str
    status: str
    expires_at: datetime
    available_credit_cents: int


@dataclass(frozen=True)
class LedgerRow:
    transaction_id: str
    kind: str
    account_id: str
    last_four: str
    holder_name: str
    amount_cents: int
    plan_code: str | None
    description: str
    authorization_code: str | None
    location_name: str | None
    related_id: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class DepositView:
    deposit_id: str
    business_date: date
    charges_cents: int
    refunds_cents: int
    fees_cents: int
    net_cents: int
    items: int


def _result(session: Session, transaction_id: str, now: datetime) -> MoneyResult:
    tx = session.get(Transaction, transaction_id)
    assert tx is not None
    account = session.get(Account, tx.account_id)
    assert account is not None
    charge_id = tx.transaction_id if tx.kind == "charge" else tx.related_id
    left = 0
    if charge_id:
        charge = session.get(Transaction, charge_id)
        if charge is not None:
            left = refunds.refundable_cents(session, charge_id, charge.amount_cents)
    return MoneyResult(
        transaction_id=tx.transaction_id,
        kind=tx.kind,
        account_id=tx.account_id,
        amount_cents=tx.amount_cents,
        plan_code=tx.plan_code,
        authorization_code=tx.authorization_code,
        related_id=tx.related_id,
        disclosure=tx.disclosure,
        occurred_at=tx.occurred_at,
        balance_cents=account.balance_cents,
        available_credit_cents=ledger.available_credit(
            account.credit_limit_cents,
            account.balance_cents,
            ledger.held_cents(session, account.account_id, now),
        ),
        refundable_cents=left,
    )


def _hold_view(session: Session, hold: Hold, now: datetime) -> HoldView:
    account = session.get(Account, hold.account_id)
    assert account is not None
    return HoldView(
        hold.hold_id,
        hold.account_id,
        hold.amount_cents,
        hold.plan_code,
        hold.authorization_code,
        "expired" if hold.status == "open" and hold.expires_at <= now else hold.status,
        hold.expires_at,
        ledger.available_credit(
            account.credit_limit_cents,
            account.balance_cents,
            ledger.held_cents(session, account.account_id, now),
        ),
    )


def _key(key: Any) -> str:
    values = parse((inputs.IDEMPOTENCY_KEY,), {"idempotency_key": key if isinstance(key, str) else None})
    return str(values["idempotency_key"])


class MoneyService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- the one path every money action takes ------------------------------------------------

    def _act(
        self,
        actor: Actor,
        *,
        scope: str,
        action: str,
        object_type: str,
        object_id: str,
        key: Any,
        values: dict[str, Any],
        work: Callable[[Session, datetime], str],
        answer: Callable[[Session, str, datetime], Any],
    ) -> Any:
        idem_key = _key(key)
        now = self.deps.now()
        earlier = idempotency.claim(
            self.deps.db, scope, idem_key, action, idempotency.fingerprint(action, values), now
        )
        if earlier:
            with transaction(self.deps.db) as session:
                return answer(session, earlier, now)
        try:
            with transaction(self.deps.db) as session:
                result_id = work(session, now)
                idempotency.finish(session, scope, idem_key, result_id)
                self.deps.audit.append(
                    session, actor, action, object_type=object_type, object_id=result_id, detail=object_id
                )
                return answer(session, result_id, now)
        except BaseException as exc:
            idempotency.release(self.deps.db, scope, idem_key)
            if isinstance(exc, PortalError):
                outcome = "not_found" if isinstance(exc, NotFound) else "refused"
                with transaction(self.deps.db) as session:
                    self.deps.audit.append(
                        session,
                        actor,
                        action,
                        object_type=object_type,
                        object_id=object_id,
                        outcome=outcome,
                        detail=str(exc)[:200],
                    )
            raise

    def _location(self, session: Session, actor: Actor, location_id: str) -> None:
        found = session.scalar(
            select(func.count())
            .select_from(Location)
            .where(Location.location_id == location_id, Location.practice_id == actor.practice_id)
        )
        if not found:
            raise ValidationError({"location_id": "is not one of the practice's locations"})

    def _visible_account(self, session: Session, actor: Actor, account_id: str) -> None:
        if (
            session.execute(visible(actor.practice_id).where(Account.account_id == account_id)).first()
            is None
        ):
            raise NotFound("account")

    # --- charges, holds, voids, refunds ---------------------------------------------------------

    def _charge_request(
        self, session: Session, actor: Actor, values: dict[str, Any], *, hold_id: str | None = None
    ) -> charges.ChargeRequest:
        """A charge or a hold as the rules take it, once the account and location are known to
        be the practice's own (a foreign id answers like an unknown one)."""
        self._visible_account(session, actor, values["account_id"])
        self._location(session, actor, values["location_id"])
        return charges.ChargeRequest(
            values["account_id"],
            values["location_id"],
            values["plan_code"],
            values["amount_cents"],
            values["description"],
            values["treatment_date"],
            hold_id,
        )

    def charge(self, actor: Actor, data: Any, key: Any, *, text: bool = False) -> MoneyResult:
        guard(self.deps, actor, Permission.PURCHASE, "charge.create", "transaction")
        values = parse(inputs.CHARGE, data, text=text)

        def work(session: Session, now: datetime) -> str:
            charge_id = charges.charge(
                session,
                self._charge_request(session, actor, values, hold_id=values["hold_id"]),
                practice_id=actor.practice_id,
                offered=offered_codes(session, actor.practice_id),
                now=now,
                by=actor.sub,
            )
            link(session, actor.practice_id, values["account_id"], "transacted", actor.sub, now)
            return charge_id

        return self._act(  # type: ignore[no-any-return]
            actor,
            scope=actor.practice_id,
            action="charge.create",
            object_type="transaction",
            object_id=values["account_id"],
            key=key,
            values=values,
            work=work,
            answer=_result,
        )

    def authorize(self, actor: Actor, data: Any, key: Any, *, text: bool = False) -> HoldView:
        guard(self.deps, actor, Permission.AUTHORIZATION_ONLY, "hold.create", "hold")
        values = parse(inputs.AUTHORIZATION, data, text=text)

        def work(session: Session, now: datetime) -> str:
            hold = charges.authorize(
                session,
                self._charge_request(session, actor, values),
                practice_id=actor.practice_id,
                offered=offered_codes(session, actor.practice_id),
                now=now,
                by=actor.sub,
            )
            return hold.hold_id

        def answer(session: Session, hold_id: str, now: datetime) -> HoldView:
            hold = session.get(Hold, hold_id)
            assert hold is not None
            return _hold_view(session, hold, now)

        return self._act(  # type: ignore[no-any-return]
            actor,
            scope=actor.practice_id,
            action="hold.create",
            object_type="hold",
            object_id=values["account_id"],
            key=key,
            values=values,
            work=work,
            answer=answer,
        )

    def void(self, actor: Actor, transaction_id: str, key: Any) -> MoneyResult:
        guard(self.deps, actor, Permission.PURCHASE, "charge.void", "transaction", transaction_id)
        return self._act(  # type: ignore[no-any-return]
            actor,
            scope=actor.practice_id,
            action="charge.void",
            object_type="transaction",
            object_id=transaction_id,
            key=key,
            values={"transaction_id": transaction_id},
            work=lambda session, now: charges.void(
                session, actor.practice_id, transaction_id, now=now, by=actor.sub
            ),
            answer=_result,
        )

    def refund(
        self, actor: Actor, transaction_id: str, data: Any, key: Any, *, text: bool = False
    ) -> MoneyResult:
        guard(self.deps, actor, Permission.REFUND, "refund.create", "transaction", transaction_id)
        values = parse(inputs.REFUND, data, text=text)
        with transaction(self.deps.db) as session:
            threshold = session.scalar(
                select(Practice.refund_step_up_cents).where(Practice.practice_id == actor.practice_id)
            )
        if refunds.needs_step_up(
            values["amount_cents"], int(threshold or 0), actor.auth_time, self.deps.clock()
        ):
            with transaction(self.deps.db) as session:
                self.deps.audit.append(
                    session,
                    actor,
                    "refund.create",
                    object_type="transaction",
                    object_id=transaction_id,
                    outcome="step_up",
                    detail=f"over {threshold} cents: fresh second factor required",
                )
            raise StepUpRequired(refunds.STEP_UP_MAX_AGE_S)
        return self._act(  # type: ignore[no-any-return]
            actor,
            scope=actor.practice_id,
            action="refund.create",
            object_type="transaction",
            object_id=transaction_id,
            key=key,
            values={"transaction_id": transaction_id, **values},
            work=lambda session, now: refunds.refund(
                session,
                actor.practice_id,
                transaction_id,
                values["amount_cents"],
                reason=values["reason"],
                now=now,
                by=actor.sub,
            ),
            answer=_result,
        )

    def refund_threshold(self, actor: Actor) -> int:
        with transaction(self.deps.db) as session:
            value = session.scalar(
                select(Practice.refund_step_up_cents).where(Practice.practice_id == actor.practice_id)
            )
        return int(value or 0)

    # --- payments from the issuer's feed ---------------------------------------------------------

    def post_payment(self, actor: Actor, data: Any, key: Any) -> MoneyResult:
        """For a service client whose token carries ``payments:post`` (client_credentials)."""
        if PAYMENTS_SCOPE not in actor.scopes:
            raise Forbidden(PAYMENTS_SCOPE)
        values = parse(inputs.PAYMENT, data)

        def work(session: Session, now: datetime) -> str:
            account_id = session.scalar(
                select(Account.account_id).where(Account.number == values["account_number"])
            )
            if account_id is None:
                raise NotFound("account")
            return payments.post(
                session,
                account_id,
                values["amount_cents"],
                reference=values["reference"],
                now=now,
                by=actor.sub,
            )

        return self._act(  # type: ignore[no-any-return]
            actor,
            scope=f"client:{actor.sub}",
            action="payment.post",
            object_type="account",
            object_id=cards.last_four(values["account_number"]),
            key=key,
            values=values,
            work=work,
            answer=_result,
        )

    # --- lists ------------------------------------------------------------------------------------

    @staticmethod
    def _ledger_filters(actor: Actor, values: dict[str, Any]) -> list[Any]:
        """The list's conditions on the ledger row itself (all but the search)."""
        filters: list[Any] = [Transaction.practice_id == actor.practice_id]
        if values.get("kind"):
            filters.append(Transaction.kind == values["kind"])
        if values.get("location_id"):
            filters.append(Transaction.location_id == values["location_id"])
        if values.get("date_from"):
            filters.append(Transaction.occurred_at >= datetime.combine(values["date_from"], time(0), UTC))
        if values.get("date_to"):
            day_after = values["date_to"] + timedelta(days=1)
            filters.append(Transaction.occurred_at < datetime.combine(day_after, time(0), UTC))
        return filters

    def _ledger_query(self, actor: Actor, values: dict[str, Any], *, first_rows: int | None = None) -> Any:
        """The list's rows with what they show, newest first once ordered by the caller.

        With a search and ``first_rows``, only rows among the first ``first_rows`` (newest
        first) can be returned: enough for a page ending there, and far cheaper (see
        :meth:`_matches`).
        """
        statement = (
            select(Transaction, Account.number, Cardholder.first_name, Cardholder.last_name, Location.name)
            .join(Account, Account.account_id == Transaction.account_id)
            .join(Cardholder, Cardholder.cardholder_id == Account.cardholder_id)
            .outerjoin(Location, Location.location_id == Transaction.location_id)
            .where(*self._ledger_filters(actor, values))
        )
        if values.get("q"):
            ids = self._matches(actor, values, newest=first_rows)
            statement = statement.where(Transaction.transaction_id.in_(select(ids.c.transaction_id)))
        return statement

    def _matches(
        self, actor: Actor, values: dict[str, Any], *, newest: int | None = None, limit: int | None = None
    ) -> Any:
        """Ids of the rows a search finds, as a subquery: the treatment text or the cardholder's
        last name contains ``q``, the authorization code is ``q``, or (4 digits) the card number
        ends in ``q``.

        One query per field, united, not an OR across the join: each can use an index of its
        own (trigram indexes on PostgreSQL, migration 0008), where the OR walked the practice's
        whole ledger (a name matching nobody: 5 s at 820,000 rows, bench.portal). Each branch may
        stop early, which keeps a common name cheap too: with ``newest=n`` each gives its n
        newest rows, whose union holds the n newest of all; with ``limit=n`` each gives at most
        n, so the union has at least n rows exactly when some branch has more.
        """
        q = values["q"]
        term = q.lower()
        rows = select(Transaction.transaction_id).where(*self._ledger_filters(actor, values))
        holders = select(Account.account_id).join(
            Cardholder, Cardholder.cardholder_id == Account.cardholder_id
        )
        branches = [
            rows.where(func.lower(Transaction.description).contains(term, autoescape=True)),
            rows.where(
                Transaction.account_id.in_(
                    holders.where(func.lower(Cardholder.last_name).contains(term, autoescape=True))
                )
            ),
        ]
        if q.isascii() and q.isalnum():
            # Codes are upper-case ASCII letters and digits (charges.authorization_code).
            branches.append(rows.where(Transaction.authorization_code == q.upper()))
        if term.isdigit() and len(term) == 4:
            numbers = select(Account.account_id).where(Account.number.endswith(term))
            branches.append(rows.where(Transaction.account_id.in_(numbers)))
        if newest is not None:
            branches = [
                b.order_by(Transaction.occurred_at.desc(), Transaction.transaction_id).limit(newest)
                for b in branches
            ]
        elif limit is not None:
            branches = [b.limit(limit) for b in branches]
        # Each branch in a subquery of its own: SQLite refuses LIMIT inside a bare UNION member.
        parts = [select(b.subquery().c.transaction_id) for b in branches]
        return union(*parts).subquery()

    @staticmethod
    def _row(tx: Transaction, number: str, first: str, last: str, location: str | None) -> LedgerRow:
        return LedgerRow(
            tx.transaction_id,
            tx.kind,
            tx.account_id,
            cards.last_four(number),
            f"{first} {last}",
            tx.amount_cents,
            tx.plan_code,
            tx.description,
            tx.authorization_code,
            location,
            tx.related_id,
            tx.occurred_at,
        )

    def transactions(self, actor: Actor, query: Any, *, text: bool = False) -> Page[LedgerRow]:
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "transaction.list", "transaction")
        values = parse(inputs.TRANSACTION_LIST, query, text=text)
        page, per_page = values["page"], values["per_page"]
        statement = self._ledger_query(actor, values, first_rows=page * per_page)
        # The joins (required foreign keys) cannot change the count, so it reads the ledger
        # alone: ~10x cheaper on a large practice (bench.portal).
        if values.get("q"):
            counted = select(self._matches(actor, values, limit=count_cap(page, per_page)).c.transaction_id)
        else:
            counted = select(Transaction.transaction_id).where(*self._ledger_filters(actor, values))
        with transaction(self.deps.db) as session:
            total, at_least = count_rows(session, counted, page, per_page)
            rows = session.execute(
                statement.order_by(Transaction.occurred_at.desc(), Transaction.transaction_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
            items = [self._row(*row) for row in rows]
            self.deps.audit.append(
                session,
                actor,
                "transaction.list",
                object_type="transaction",
                detail=f"page {page}, {len(items)} of {total}",
            )
        return Page(items, page, per_page, total, at_least)

    def export_csv(self, actor: Actor, query: Any, *, limit: int = 50_000) -> str:
        """The filtered list as CSV (amounts in cents and dollars); audited."""
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "transaction.export", "transaction")
        values = parse(inputs.TRANSACTION_LIST, query, text=True)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "date",
                "transaction_id",
                "kind",
                "account_last_four",
                "cardholder",
                "amount_cents",
                "amount",
                "plan",
                "authorization_code",
                "location",
                "description",
                "related_id",
            ]
        )
        with transaction(self.deps.db) as session:
            rows = session.execute(
                self._ledger_query(actor, values)
                .order_by(Transaction.occurred_at.desc(), Transaction.transaction_id)
                .limit(limit)
            ).all()
            for row in rows:
                r = self._row(*row)
                writer.writerow(
                    [
                        r.occurred_at.isoformat(),
                        r.transaction_id,
                        r.kind,
                        r.last_four,
                        _csv_safe(r.holder_name),
                        r.amount_cents,
                        _dollars(r.amount_cents),
                        r.plan_code or "",
                        r.authorization_code or "",
                        _csv_safe(r.location_name or ""),
                        _csv_safe(r.description),
                        r.related_id or "",
                    ]
                )
            self.deps.audit.append(
                session, actor, "transaction.export", object_type="transaction", detail=f"{len(rows)} rows"
            )
        return out.getvalue()

    def deposits(self, actor: Actor, query: Any, *, text: bool = False) -> Page[DepositView]:
        guard(self.deps, actor, Permission.DAILY_FUNDING_REPORT, "deposit.list", "deposit")
        values = parse(inputs.DEPOSIT_LIST, query, text=text)
        statement = select(Deposit).where(Deposit.practice_id == actor.practice_id)
        if values["date_from"]:
            statement = statement.where(Deposit.business_date >= values["date_from"])
        if values["date_to"]:
            statement = statement.where(Deposit.business_date <= values["date_to"])
        page, per_page = values["page"], values["per_page"]
        with transaction(self.deps.db) as session:
            total, at_least = count_rows(session, statement, page, per_page)
            items = [
                DepositView(
                    d.deposit_id,
                    d.business_date,
                    d.charges_cents,
                    d.refunds_cents,
                    d.fees_cents,
                    d.net_cents,
                    d.items,
                )
                for d in session.scalars(
                    statement.order_by(Deposit.business_date.desc())
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                ).all()
            ]
            self.deps.audit.append(
                session, actor, "deposit.list", object_type="deposit", detail=f"page {page}"
            )
        return Page(items, page, per_page, total, at_least)

    # --- the daily jobs ---------------------------------------------------------------------------

    def accrue_interest(self, through: date) -> interest.RunResult:
        with transaction(self.deps.db) as session:
            return interest.run(session, through)

    def settle(self, business_date: date) -> settlement.SettleResult:
        with transaction(self.deps.db) as session:
            return settlement.settle(session, business_date, now=self.deps.now())


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _csv_safe(text: str) -> str:
    """No formula injection when the CSV is opened in a spreadsheet."""
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text
