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
    DDL,
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
    event,
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
    # Refunds above this need a fresh second factor (step-up through auth; issue 7).
    refund_step_up_cents: Mapped[int] = mapped_column(BigInteger, default=500_00, server_default="50000")


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
    # Standard-APR interest accrued daily but not yet posted (sub-cent exact), and through which day.
    accrued_interest: Mapped[Decimal] = mapped_column(Numeric(18, 6), default=Decimal(0), server_default="0")
    interest_through: Mapped[date | None] = mapped_column(Date, nullable=True)


class PracticeAccount(Base):
    """Which accounts a practice may see: applied for, transacted with, or looked up."""

    __tablename__ = "practice_accounts"

    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True, index=True)
    reason: Mapped[str] = mapped_column(String(16))  # applied | transacted | lookup
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(64))


class PracticeAccountCount(Base):
    """How many rows ``practice_accounts`` holds for each practice: the dashboard's headline.

    Kept by the database in the transaction of each link (triggers below, migration 0009), so
    the dashboard reads one row instead of counting a large practice's 94,000 links on every
    view (27 ms of PostgreSQL per request, bench.portal).
    """

    __tablename__ = "practice_account_counts"

    practice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    accounts: Mapped[int] = mapped_column(Integer)


ACCOUNT_COUNT_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS practice_accounts_count_add AFTER INSERT ON practice_accounts BEGIN "
    "INSERT INTO practice_account_counts (practice_id, accounts) VALUES (NEW.practice_id, 1) "
    "ON CONFLICT (practice_id) DO UPDATE SET accounts = accounts + 1; END",
    "CREATE TRIGGER IF NOT EXISTS practice_accounts_count_remove AFTER DELETE ON practice_accounts BEGIN "
    "UPDATE practice_account_counts SET accounts = accounts - 1 WHERE practice_id = OLD.practice_id; END",
)
# On PostgreSQL one update per statement and practice (transition tables): a row trigger on a
# bulk insert updates the same counter row once per link, and each update walks the row's
# growing chain of versions — quadratic (94,000 links in one INSERT did not finish in minutes).
ACCOUNT_COUNT_POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION practice_accounts_count_add() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN INSERT INTO practice_account_counts (practice_id, accounts) "
    "SELECT practice_id, count(*) FROM added GROUP BY practice_id "
    "ON CONFLICT (practice_id) "
    "DO UPDATE SET accounts = practice_account_counts.accounts + EXCLUDED.accounts; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION practice_accounts_count_remove() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE practice_account_counts c SET accounts = c.accounts - r.n "
    "FROM (SELECT practice_id, count(*) AS n FROM removed GROUP BY practice_id) r "
    "WHERE c.practice_id = r.practice_id; RETURN NULL; END $$",
    "CREATE TRIGGER practice_accounts_count_add AFTER INSERT ON practice_accounts "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION practice_accounts_count_add()",
    "CREATE TRIGGER practice_accounts_count_remove AFTER DELETE ON practice_accounts "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION practice_accounts_count_remove()",
)


class Application(Base):
    """A credit application a practice made on a patient's behalf, with the patient's consent."""

    __tablename__ = "applications"
    # The lists by date, and the dashboard's last-30-days count by status from the index alone
    # (migration 0009).
    __table_args__ = (
        Index("ix_applications_practice_submitted_status", "practice_id", "submitted_at", "status"),
    )

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
        # The practice's transactions list, newest first (migration 0007), its filters by kind
        # and location and its search by authorization code (0008). The searches by text use
        # trigram indexes that exist only on PostgreSQL (0008), so they are not declared here.
        Index("ix_transactions_practice_occurred", "practice_id", "occurred_at"),
        Index("ix_transactions_practice_kind_location", "practice_id", "kind", "location_id", "occurred_at"),
        Index("ix_transactions_practice_location", "practice_id", "location_id", "occurred_at"),
        Index("ix_transactions_practice_auth_code", "practice_id", "authorization_code"),
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
    # Issue 7: what a refund or void reverses; the treatment's date; the promotion's terms as shown.
    related_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    treatment_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    disclosure: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(64), default="", server_default="")


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
    # Issue 7: open | paid | expired | void; interest that accrues during the promotion (deferred
    # interest, charged only if it ends unpaid) or at the plan's reduced APR.
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    apr: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0), server_default="0")
    accrued_interest: Mapped[Decimal] = mapped_column(Numeric(18, 6), default=Decimal(0), server_default="0")


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


# --- issue 7: money ----------------------------------------------------------------------------


class Hold(Base):
    """An authorization-only hold: reduces available credit until a purchase completes it or it expires."""

    __tablename__ = "holds"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="ck_holds_amount_positive"),)

    hold_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"), index=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.location_id"))
    plan_code: Mapped[str] = mapped_column(String(8))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(200))
    authorization_code: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | completed | voided
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    charge_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))


class IdempotencyKey(Base):
    """One ``Idempotency-Key`` per practice: the request's fingerprint and, once done, its result."""

    __tablename__ = "idempotency_keys"

    practice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))  # pending | done
    result_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column()


class Deposit(Base):
    """One day's funding for a practice: its charges less refunds and merchant fees."""

    __tablename__ = "deposits"
    __table_args__ = (Index("ux_deposits_practice_day", "practice_id", "business_date", unique=True),)

    deposit_id: Mapped[str] = mapped_column(ID, primary_key=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"))
    business_date: Mapped[date] = mapped_column(Date)
    charges_cents: Mapped[int] = mapped_column(BigInteger)
    refunds_cents: Mapped[int] = mapped_column(BigInteger)
    fees_cents: Mapped[int] = mapped_column(BigInteger)
    net_cents: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column()


class DepositItem(Base):
    """Which ledger row a deposit settled (each at most once; the ledger row itself never changes)."""

    __tablename__ = "deposit_items"

    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.transaction_id"), primary_key=True)
    deposit_id: Mapped[str] = mapped_column(ForeignKey("deposits.deposit_id"), index=True)
    fee_cents: Mapped[int] = mapped_column(BigInteger)


# The ledger is append-only in the database itself: UPDATE and DELETE on it fail.
LEDGER_GUARD_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS transactions_no_update BEFORE UPDATE ON transactions "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS transactions_no_delete BEFORE DELETE ON transactions "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
)
LEDGER_GUARD_POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$",
    "CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions "
    "FOR EACH ROW EXECUTE FUNCTION transactions_append_only()",
)
for _sql in LEDGER_GUARD_SQLITE:
    event.listen(Transaction.__table__, "after_create", DDL(_sql).execute_if(dialect="sqlite"))
for _sql in LEDGER_GUARD_POSTGRESQL:
    event.listen(Transaction.__table__, "after_create", DDL(_sql).execute_if(dialect="postgresql"))
# After every table exists (the triggers on practice_accounts write to practice_account_counts).
for _sql in ACCOUNT_COUNT_SQLITE:
    event.listen(Base.metadata, "after_create", DDL(_sql).execute_if(dialect="sqlite"))
for _sql in ACCOUNT_COUNT_POSTGRESQL:
    event.listen(Base.metadata, "after_create", DDL(_sql).execute_if(dialect="postgresql"))
