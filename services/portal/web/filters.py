"""Template filters: how money, rates and dates read on a page."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import Flask

STATUS_LABELS = {
    "approved": "Approved",
    "pending_review": "Pending review",
    "declined": "Declined",
    "active": "Active",
    "suspended": "Suspended",
    "closed": "Closed",
    "charge": "Purchase",
    "refund": "Refund",
    "payment": "Payment",
    "interest": "Interest",
}


def money(cents: int | None) -> str:
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}${whole:,}.{part:02d}"


def dollars(cents: int | None) -> str:
    """For a form field: ``1234.50`` (no symbol, no thousands separator)."""
    if cents is None:
        return ""
    whole, part = divmod(int(cents), 100)
    return f"{whole}.{part:02d}"


def rate(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:f}%"


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return value.strftime("%b %-d, %Y")


def moment(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%b %-d, %Y %H:%M UTC")


def label(value: str | None) -> str:
    return STATUS_LABELS.get(value or "", (value or "").replace("_", " ").capitalize())


def install(app: Flask) -> None:
    for name, function in {
        "money": money,
        "dollars": dollars,
        "rate": rate,
        "day": day,
        "moment": moment,
        "label": label,
    }.items():
        app.add_template_filter(function, name)
