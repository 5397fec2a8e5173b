"""Reports and analytics (issue 8): how financing is working for the signed-in practice.

**Time zone, stated once:** every report works in UTC days. A range is
``first``–``last``, both days *inclusive*: rows with ``first 00:00 UTC <= occurred_at
< (last + 1 day) 00:00 UTC`` (ledger rows, applications) or ``first <= business_date
<= last`` (deposits, which are already UTC business days). Months are UTC calendar
months. The default range is the last 12 calendar months, this month included.

Every figure is an aggregate computed by the database (``GROUP BY``), always for the
actor's practice only; Python only formats the few grouped rows and fills months
with nothing in them. The ledger reports read the daily roll-up ``report_days``
(:mod:`services.portal.store.report_models`, kept by a trigger on ``transactions`` in
the same transaction as each ledger row), so a year is a few thousand rows however
many purchases it holds; applications and deposits are read directly.

Definitions:

- **Financed volume**: purchases (``charge`` rows) that were not voided; a void
  undoes a whole charge before settlement, so a voided charge never financed
  anything. Refunds are a separate report (volume is gross of refunds).
- **Average ticket**: financed volume ÷ number of purchases, rounded once with
  :func:`services.portal.ledger.to_cents` (half to even).
- **Applications / approval rate**: applications submitted in the range and the
  share of them approved (pending review counts as not approved yet).
- **Plan mix**: financed volume and purchases by plan.
- **Refunds**: refund rows by the month they were made.
- **Merchant fees and net deposits** (the daily funding report): the deposits
  settlement made for business days in the range, by month.

Permissions (the table in :mod:`services.portal.permissions`, unchanged):
``daily_funding_report`` for every report with money in it (volume by month and
by location, average ticket, plan mix, refunds, fees and deposits) — they show the
practice's revenue, which the funding report already shows; ``account_lookup`` for
applications and approval rate — whoever may list the applications one by one may
count them. Neither report shows patient data. Every view and export is audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Date, String, case, func, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from services.common.db import transaction
from services.portal import ledger, plans
from services.portal.errors import NotFound, ValidationError
from services.portal.permissions import Actor, Permission
from services.portal.service_layer.unit import Deps, guard
from services.portal.store.models import Application, Deposit, Location
from services.portal.store.report_models import ReportDay

TIME_ZONE = "UTC"
DEFAULT_MONTHS = 12
MAX_DAYS = 366 * 5

# --- the date range ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """``first`` to ``last``, both days included, in UTC."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight UTC after the last day."""
        return datetime.combine(self.last + timedelta(days=1), time(0), UTC)

    def months(self) -> list[str]:
        """Every ``YYYY-MM`` the range touches, in order."""
        out: list[str] = []
        year, month = self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def query(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def default_range(today: date) -> DateRange:
    month = today.month - (DEFAULT_MONTHS - 1)
    year = today.year
    while month < 1:
        month += 12
        year -= 1
    return DateRange(date(year, month, 1), today)


def parse_range(args: Mapping[str, Any], today: date) -> DateRange:
    """``from`` / ``to`` (``YYYY-MM-DD``) from a query; either missing takes the default's."""
    default = default_range(today)
    errors: dict[str, str] = {}
    values: dict[str, date] = {}
    for name, fallback in (("from", default.first), ("to", default.last)):
        raw = args.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[name] = fallback
            continue
        text = str(raw).strip()
        try:
            if len(text) != 10:
                raise ValueError(text)
            values[name] = date.fromisoformat(text)
        except ValueError:
            errors[name] = "must be a date (YYYY-MM-DD)"
    if not errors and values["from"] > values["to"]:
        errors["to"] = "must be on or after the first day"
    if not errors and (values["to"] - values["from"]).days >= MAX_DAYS:
        errors["from"] = "must be within five years of the last day"
    if errors:
        raise ValidationError(errors)
    return DateRange(values["from"], values["to"])


# --- month buckets in SQL (one expression per dialect) -----------------------------------------


class month_of(FunctionElement[str]):  # noqa: N801 - reads like the SQL function it is
    """The UTC month of a timestamp (or a date) column, computed by the database; read it
    with :func:`month_key`."""

    type = String()
    inherit_cache = True
    name = "month_of"


@compiles(month_of)
def _month_of_sqlite(element: month_of, compiler: Any, **kw: Any) -> str:
    # SQLite keeps timestamps (already UTC, see UtcDateTime) and dates as ISO text.
    (column,) = list(element.clauses)
    return f"substr({compiler.process(column, **kw)}, 1, 7)"


@compiles(month_of, "postgresql")
def _month_of_postgresql(element: month_of, compiler: Any, **kw: Any) -> str:
    # date_trunc is much cheaper per row than to_char; :func:`month_key` formats the few groups.
    (column,) = list(element.clauses)
    sql = compiler.process(column, **kw)
    if isinstance(column.type, Date):
        return f"date_trunc('month', CAST({sql} AS timestamp))"
    return f"date_trunc('month', timezone('UTC', {sql}))"


def month_key(value: Any) -> str:
    """A month bucket as ``YYYY-MM``: SQLite gives text, PostgreSQL a timestamp."""
    return value[:7] if isinstance(value, str) else f"{value:%Y-%m}"


# --- the reports' shape ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str  # text | count | cents | percent


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    summary: str
    range: DateRange
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    chart_column: str  # which column the chart draws
    chart: str  # bar | line | hbar
    totals: tuple[Any, ...] | None = None

    def series(self) -> tuple[list[str], list[int | Decimal]]:
        index = [c.key for c in self.columns].index(self.chart_column)
        return [str(r[0]) for r in self.rows], [r[index] or 0 for r in self.rows]

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


@dataclass(frozen=True)
class Spec:
    slug: str
    title: str
    summary: str
    permission: Permission
    build: Callable[[Session, str, DateRange], Report]


def percent(part: int, whole: int) -> Decimal | None:
    """``part / whole`` as a percentage with two decimals (half to even); None when whole is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def average_cents(total: int, count: int) -> int | None:
    return ledger.to_cents(Decimal(total) / Decimal(count)) if count else None


def month_label(month: str) -> str:
    year, number = month.split("-")
    return f"{date(int(year), int(number), 1):%b %Y}"


# --- the aggregate queries ---------------------------------------------------------------------


def _days(practice_id: str, kind: str, rng: DateRange) -> list[ColumnElement[bool]]:
    """The practice's roll-up buckets of ``kind`` for the range's days (see ``report_days``)."""
    return [
        ReportDay.practice_id == practice_id,
        ReportDay.kind == kind,
        ReportDay.day >= rng.first,
        ReportDay.day <= rng.last,
    ]


def _volume_by_month(session: Session, practice_id: str, rng: DateRange) -> dict[str, tuple[int, int]]:
    return _by_month(session, practice_id, "charge", rng)


def _by_month(session: Session, practice_id: str, kind: str, rng: DateRange) -> dict[str, tuple[int, int]]:
    month = month_of(ReportDay.day).label("month")
    rows = session.execute(
        select(month, func.sum(ReportDay.items), func.sum(ReportDay.cents))
        .where(*_days(practice_id, kind, rng))
        .group_by(literal_column("month"))
    ).all()
    return {month_key(m): (int(n), int(cents)) for m, n, cents in rows}


def financed_volume(session: Session, practice_id: str, rng: DateRange) -> Report:
    found = _volume_by_month(session, practice_id, rng)
    rows = tuple((month_label(m), *found.get(m, (0, 0))) for m in rng.months())
    total_n = sum(r[1] for r in rows)
    total_cents = sum(r[2] for r in rows)
    return Report(
        "financed-volume",
        "Financed volume by month",
        "Purchases financed (voided purchases left out; refunds are their own report).",
        rng,
        (Column("month", "Month", "text"), Column("purchases", "Purchases", "count"),
         Column("volume", "Financed volume", "cents")),
        rows,
        "volume",
        "bar",
        ("Total", total_n, total_cents),
    )


def average_ticket(session: Session, practice_id: str, rng: DateRange) -> Report:
    found = _volume_by_month(session, practice_id, rng)
    rows = []
    for m in rng.months():
        n, cents = found.get(m, (0, 0))
        rows.append((month_label(m), n, cents, average_cents(cents, n)))
    total_n = sum(r[1] for r in rows)
    total_cents = sum(r[2] for r in rows)
    return Report(
        "average-ticket",
        "Average ticket by month",
        "Financed volume divided by the number of purchases (rounded half to even).",
        rng,
        (Column("month", "Month", "text"), Column("purchases", "Purchases", "count"),
         Column("volume", "Financed volume", "cents"), Column("average", "Average ticket", "cents")),
        tuple(rows),
        "average",
        "line",
        ("Whole range", total_n, total_cents, average_cents(total_cents, total_n)),
    )


def volume_by_location(session: Session, practice_id: str, rng: DateRange) -> Report:
    name = func.coalesce(Location.name, "No location")
    cents = func.sum(ReportDay.cents)
    found = session.execute(
        select(name, func.sum(ReportDay.items), cents)
        .select_from(ReportDay)
        .outerjoin(
            Location,
            (Location.location_id == ReportDay.location_id) & (Location.practice_id == practice_id),
        )
        .where(*_days(practice_id, "charge", rng))
        .group_by(ReportDay.location_id, Location.name)
        .having(func.sum(ReportDay.items) > 0)
        .order_by(cents.desc(), name)
    ).all()
    total_n = sum(int(n) for _, n, _c in found)
    total_cents = sum(int(c) for _, _n, c in found)
    rows = tuple(
        (str(loc), int(n), int(c), percent(int(c), total_cents)) for loc, n, c in found
    )
    return Report(
        "volume-by-location",
        "Financed volume by location",
        "Purchases financed at each of the practice's locations.",
        rng,
        (Column("location", "Location", "text"), Column("purchases", "Purchases", "count"),
         Column("volume", "Financed volume", "cents"), Column("share", "Share of volume", "percent")),
        rows,
        "volume",
        "hbar",
        ("Total", total_n, total_cents, percent(total_cents, total_cents)),
    )


def plan_mix(session: Session, practice_id: str, rng: DateRange) -> Report:
    cents = func.sum(ReportDay.cents)
    found = session.execute(
        select(ReportDay.plan_code, func.sum(ReportDay.items), cents)
        .where(*_days(practice_id, "charge", rng))
        .group_by(ReportDay.plan_code)
        .having(func.sum(ReportDay.items) > 0)
        .order_by(cents.desc(), ReportDay.plan_code)
    ).all()
    total_n = sum(int(n) for _, n, _c in found)
    total_cents = sum(int(c) for _, _n, c in found)
    rows = []
    for code, n, cents in found:
        plan = plans.get(code or "")
        label = f"{plan.name} ({plan.code})" if plan else (code or "No plan")
        rows.append((label, int(n), int(cents), percent(int(cents), total_cents)))
    return Report(
        "plan-mix",
        "Plan mix",
        "Financed volume and purchases by financing plan.",
        rng,
        (Column("plan", "Plan", "text"), Column("purchases", "Purchases", "count"),
         Column("volume", "Financed volume", "cents"), Column("share", "Share of volume", "percent")),
        tuple(rows),
        "volume",
        "hbar",
        ("Total", total_n, total_cents, percent(total_cents, total_cents)),
    )


def applications(session: Session, practice_id: str, rng: DateRange) -> Report:
    month = month_of(Application.submitted_at).label("month")

    def count(status: str) -> Any:
        return func.coalesce(func.sum(case((Application.status == status, 1), else_=0)), 0)

    found = {
        month_key(m): (int(n), int(a), int(d), int(p))
        for m, n, a, d, p in session.execute(
            select(month, func.count(), count("approved"), count("declined"), count("pending_review"))
            .where(
                Application.practice_id == practice_id,
                Application.submitted_at >= rng.start,
                Application.submitted_at < rng.end,
            )
            .group_by(literal_column("month"))
        ).all()
    }
    rows = []
    for m in rng.months():
        n, a, d, p = found.get(m, (0, 0, 0, 0))
        rows.append((month_label(m), n, a, d, p, percent(a, n)))
    totals = [sum(r[i] for r in rows) for i in range(1, 5)]
    return Report(
        "applications",
        "Applications and approval rate",
        "Applications submitted each month and the share approved (pending review is not approved yet).",
        rng,
        (Column("month", "Month", "text"), Column("submitted", "Submitted", "count"),
         Column("approved", "Approved", "count"), Column("declined", "Declined", "count"),
         Column("pending", "Pending review", "count"), Column("rate", "Approval rate", "percent")),
        tuple(rows),
        "rate",
        "line",
        ("Total", *totals, percent(totals[1], totals[0])),
    )


def refunds(session: Session, practice_id: str, rng: DateRange) -> Report:
    found = _by_month(session, practice_id, "refund", rng)
    rows = tuple((month_label(m), *found.get(m, (0, 0))) for m in rng.months())
    return Report(
        "refunds",
        "Refunds by month",
        "Refunds made each month, partial and full.",
        rng,
        (Column("month", "Month", "text"), Column("refunds", "Refunds", "count"),
         Column("amount", "Refunded", "cents")),
        rows,
        "amount",
        "bar",
        ("Total", sum(r[1] for r in rows), sum(r[2] for r in rows)),
    )


def funding(session: Session, practice_id: str, rng: DateRange) -> Report:
    month = month_of(Deposit.business_date).label("month")
    found = {
        month_key(m): tuple(int(v) for v in values)
        for m, *values in session.execute(
            select(
                month,
                func.count(),
                func.coalesce(func.sum(Deposit.charges_cents), 0),
                func.coalesce(func.sum(Deposit.refunds_cents), 0),
                func.coalesce(func.sum(Deposit.fees_cents), 0),
                func.coalesce(func.sum(Deposit.net_cents), 0),
            )
            .where(
                Deposit.practice_id == practice_id,
                Deposit.business_date >= rng.first,
                Deposit.business_date <= rng.last,
            )
            .group_by(literal_column("month"))
        ).all()
    }
    rows = tuple((month_label(m), *found.get(m, (0, 0, 0, 0, 0))) for m in rng.months())
    return Report(
        "funding",
        "Merchant fees and net deposits",
        "The daily funding report by month: charges less refunds and merchant fees, as deposited.",
        rng,
        (Column("month", "Month", "text"), Column("deposits", "Deposits", "count"),
         Column("charges", "Charges", "cents"), Column("refunds", "Refunds", "cents"),
         Column("fees", "Merchant fees", "cents"), Column("net", "Net deposits", "cents")),
        rows,
        "net",
        "bar",
        ("Total", *(sum(r[i] for r in rows) for i in range(1, 6))),
    )


MONEY = Permission.DAILY_FUNDING_REPORT
SPECS: tuple[Spec, ...] = (
    Spec("financed-volume", "Financed volume by month", "Purchases financed each month.", MONEY,
         financed_volume),
    Spec("volume-by-location", "Financed volume by location", "Purchases financed at each location.",
         MONEY, volume_by_location),
    Spec("applications", "Applications and approval rate", "Applications each month and the share approved.",
         Permission.ACCOUNT_LOOKUP, applications),
    Spec("average-ticket", "Average ticket", "The average purchase financed, by month.", MONEY,
         average_ticket),
    Spec("plan-mix", "Plan mix", "Financed volume by financing plan.", MONEY, plan_mix),
    Spec("refunds", "Refunds", "Refunds made each month.", MONEY, refunds),
    Spec("funding", "Merchant fees and net deposits", "The daily funding report, by month.", MONEY, funding),
)
BY_SLUG: dict[str, Spec] = {spec.slug: spec for spec in SPECS}


# --- CSV ---------------------------------------------------------------------------------------


def csv_safe(text: str) -> str:
    """No formula injection when the CSV is opened in a spreadsheet."""
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def to_csv(report: Report) -> str:
    """Header, one line per row, then the totals; money as cents and as dollars, dates UTC."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"# {report.title}, {report.range.first.isoformat()} to "
                     f"{report.range.last.isoformat()} inclusive, {TIME_ZONE}"])
    header: list[str] = []
    for column in report.columns:
        if column.kind == "cents":
            header += [f"{column.key}_cents", column.key]
        else:
            header.append(column.key)
    writer.writerow(header)
    for row in (*report.rows, *((report.totals,) if report.totals else ())):
        cells: list[str | int] = []
        for column, value in zip(report.columns, row, strict=True):
            if column.kind == "cents":
                cells += ["", ""] if value is None else [int(value), _dollars(int(value))]
            elif column.kind == "percent":
                cells.append("" if value is None else f"{value:f}")
            elif column.kind == "count":
                cells.append(int(value))
            else:
                cells.append(csv_safe(str(value)))
        writer.writerow(cells)
    return out.getvalue()


# --- the service -------------------------------------------------------------------------------


class ReportService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def available(self, actor: Actor) -> list[Spec]:
        return [spec for spec in SPECS if actor.can(spec.permission)]

    def range(self, args: Mapping[str, Any]) -> DateRange:
        return parse_range(args, self.deps.today())

    def run(self, actor: Actor, slug: str, args: Mapping[str, Any], *, export: bool = False) -> Report:
        spec = BY_SLUG.get(slug)
        if spec is None:
            raise NotFound("report")
        action = "report.export" if export else "report.view"
        guard(self.deps, actor, spec.permission, action, "report", slug)
        rng = self.range(args)
        with transaction(self.deps.db) as session:
            report = spec.build(session, actor.practice_id, rng)
            self.deps.audit.append(
                session,
                actor,
                action,
                object_type="report",
                object_id=slug,
                detail=f"{rng.first.isoformat()} to {rng.last.isoformat()}",
            )
        return report

