"""The portal's tables. Every row of business data is reachable from a practice id —
the one auth puts in the token — and every query for a practice goes through it.

Money is integer cents (``BigInteger``), rates are ``Numeric`` percentages read as
``Decimal``. The ledger (``transactions``) and promotional balances are created here
so pages can show them; issue 7 writes them (charges, refunds, payments, interest).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UtcDateTime, utcnow

ID = String(32)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class Practice(Base):
    """A practice's profile in the portal; its identity (and sign-in) lives in auth."""

    __tablename__ = "practices"

    practice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Location(Base):
    """Where a practice sees patients; applications and charges name one."""

    __tablename__ = "locations"

    location_id: Mapped[str] = mapped_column(ID, primary_key=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    street: Mapped[str] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    zip: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cardholder(Base):
    """A person who holds (or applied for) the card; not owned by any one practice."""

    __tablename__ = "cardholders"
    __table_args__ = (Index("ix_cardholders_identity", "last_name", "date_of_birth", "zip"),)

    cardholder_id: Mapped[str] = mapped_column(ID, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(60))
    last_name: Mapped[str] = mapped_column(String(60))
    date_of_birth: Mapped[date] = mapped_column(Date)
    street: Mapped[str] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    zip: Mapped[str] = mapped_column(String(10))
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    """A cardholder account. ``balance_cents`` is kept equal to the ledger's sum (issue 7)."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("credit_limit_cents >= 0", name="ck_accounts_limit_not_negative"),)

    account_id: Mapped[str] = mapped_column(ID, primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    cardholder_id: Mapped[str] = mapped_column(ForeignKey("cardholders.cardholder_id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    credit_limit_cents: Mapped[int] = mapped_column(BigInteger)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    apr: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by_practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"))


class PracticeAccount(Base):
    """Which accounts a practice may see: applied for, transacted with, or looked up."""

    __tablename__ = "practice_accounts"

    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(String(16))  # applied | transacted | lookup
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(64))


class Application(Base):
    """A credit application a practice made on a patient's behalf, with the patient's consent."""

    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_practice_submitted", "practice_id", "submitted_at"),)

    application_id: Mapped[str] = mapped_column(ID, primary_key=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"))
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.location_id"))
    first_name: Mapped[str] = mapped_column(String(60))
    last_name: Mapped[str] = mapped_column(String(60))
    date_of_birth: Mapped[date] = mapped_column(Date)
    street: Mapped[str] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    zip: Mapped[str] = mapped_column(String(10))
    email: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))
    annual_income_cents: Mapped[int] = mapped_column(BigInteger)
    monthly_housing_cents: Mapped[int] = mapped_column(BigInteger)
    requested_cents: Mapped[int] = mapped_column(BigInteger)
    consent: Mapped[bool] = mapped_column(Boolean)
    consent_text: Mapped[str] = mapped_column(Text)
    consent_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), index=True)
    credit_limit_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reasons: Mapped[str] = mapped_column(Text, default="")  # adverse-action reasons, one per line
    review_notes: Mapped[str] = mapped_column(Text, default="")
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.account_id"), nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_by_name: Mapped[str] = mapped_column(String(200), default="")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Transaction(Base):
    """The account ledger: append-only rows, amounts positive, direction by ``kind``.

    Kinds: charge, refund, payment, interest. Written by issue 7's money code and
    the demo seed; the pages here only read it.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_transactions_amount_positive"),
        Index("ix_transactions_account_occurred", "account_id", "occurred_at"),
    )

    transaction_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    practice_id: Mapped[str | None] = mapped_column(ForeignKey("practices.practice_id"), nullable=True)
    location_id: Mapped[str | None] = mapped_column(ForeignKey("locations.location_id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    plan_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    authorization_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Promotion(Base):
    """A promotional balance: a charge on a promotional plan and what is left of it until ``ends_on``."""

    __tablename__ = "promotions"

    promotion_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.transaction_id"))
    plan_code: Mapped[str] = mapped_column(String(8))
    original_cents: Mapped[int] = mapped_column(BigInteger)
    balance_cents: Mapped[int] = mapped_column(BigInteger)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)


class PracticePlan(Base):
    """A plan from the catalogue that a practice offers its patients."""

    __tablename__ = "practice_plans"

    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"), primary_key=True)
    plan_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One line of the audit log. ``hash`` = SHA-256 over the entry's fields and ``prev_hash``.

    Never holds patient data values (names, numbers, search terms): only who,
    when, what kind of object and its id, the outcome and the address.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_practice_seq", "practice_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    practice_id: Mapped[str] = mapped_column(String(64))
    actor_sub: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_roles: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's checkpoint and lock row: the last entry's ``seq`` and ``hash``.

    Appends lock this row (``SELECT … FOR UPDATE``), so the chain stays one line;
    ``verify`` compares it with the log's tail to see a cut-off tail.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
