"""Seed data for the reports tests, written through the service layer, and the expected figures
computed from what was written with plain Python (no SQL, no report code)."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import update

from services.common.db import transaction
from services.portal.service_layer import Services
from services.portal.store.models import Account
from tests.unit.portal.factories import PracticeFixture, applicant

# The reports' range in these tests: both days inclusive, UTC.
FIRST = date(2026, 3, 1)
LAST = date(2026, 8, 31)
# The catalogue's merchant fee rates, written out again (percent of each purchase).
FEE_RATES = {"DI6": Decimal("5.90"), "DI12": Decimal("9.90"), "STD": Decimal("2.50")}

_keys = itertools.count()


def key() -> str:
    return f"report-key-{next(_keys):08d}"


@dataclass
class Seeded:
    practice: PracticeFixture
    location_names: dict[str, str]
    # (when, location_id, plan, amount, voided)
    charges: list[tuple[datetime, str, str, int, bool]] = field(default_factory=list)
    refunds: list[tuple[datetime, str, int]] = field(default_factory=list)  # (when, plan, amount)
    applications: list[tuple[datetime, str]] = field(default_factory=list)  # (when, status)
    settled_days: list[date] = field(default_factory=list)

    def in_range(self, when: datetime) -> bool:
        return FIRST <= when.astimezone(UTC).date() <= LAST

    def financed(self) -> list[tuple[datetime, str, str, int, bool]]:
        return [c for c in self.charges if not c[4] and self.in_range(c[0])]

    def volume_by_month(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for when, _loc, _plan, amount, _v in self.financed():
            bucket = out[f"{when:%Y-%m}"]
            bucket[0] += 1
            bucket[1] += amount
        return {m: (n, c) for m, (n, c) in out.items()}

    def volume_by_location(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _when, loc, _plan, amount, _v in self.financed():
            out[self.location_names[loc]][0] += 1
            out[self.location_names[loc]][1] += amount
        return {k: (n, c) for k, (n, c) in out.items()}

    def plan_mix(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _when, _loc, plan, amount, _v in self.financed():
            out[plan][0] += 1
            out[plan][1] += amount
        return {k: (n, c) for k, (n, c) in out.items()}

    def refunds_by_month(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for when, _plan, amount in self.refunds:
            if self.in_range(when):
                out[f"{when:%Y-%m}"][0] += 1
                out[f"{when:%Y-%m}"][1] += amount
        return {m: (n, c) for m, (n, c) in out.items()}

    def applications_by_month(self) -> dict[str, tuple[int, int, int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for when, status in self.applications:
            if self.in_range(when):
                bucket = out[f"{when:%Y-%m}"]
                bucket[0] += 1
                bucket[("approved", "declined", "pending_review").index(status) + 1] += 1
        return {m: (a, b, c, d) for m, (a, b, c, d) in out.items()}

    def funding_by_month(self) -> dict[str, tuple[int, int, int, int, int]]:
        """Each day was settled right after its own activity, so a deposit holds that day's rows."""

        def fee(plan: str, amount: int) -> int:
            return int((Decimal(amount) * FEE_RATES[plan] / 100).quantize(Decimal(1), ROUND_HALF_EVEN))

        days: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
        for when, _loc, plan, amount, voided in self.charges:
            if not voided:
                day = days[when.date()]
                day[0] += amount
                day[2] += fee(plan, amount)
        for when, plan, amount in self.refunds:
            day = days[when.date()]
            day[1] += amount
            day[2] -= fee(plan, amount)
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for day in self.settled_days:
            if FIRST <= day <= LAST:
                charged, refunded, fees = days.get(day, [0, 0, 0])
                bucket = out[f"{day:%Y-%m}"]
                for i, v in enumerate((1, charged, refunded, fees, charged - refunded - fees)):
                    bucket[i] += v
        return {m: tuple(v) for m, v in out.items()}  # type: ignore[misc]


def _at(day: date, seconds: int) -> datetime:
    return datetime.combine(day, time(0), UTC) + timedelta(seconds=seconds)


def seed(
    services: Services,
    db: object,
    set_clock: Callable[[datetime], None],
    practice: PracticeFixture,
    location_names: dict[str, str],
    *,
    seed_value: int = 11,
    days: int = 24,
) -> Seeded:
    """Random activity on ``days`` days around and inside FIRST–LAST, plus the four boundary instants
    (first day 00:00:00 and last day 23:59:59.999999 are in; the instants just outside are not)."""
    rng = random.Random(seed_value)
    actor = practice.actor("admin")
    seeded = Seeded(practice, location_names)
    span = (LAST - FIRST).days
    chosen = {FIRST - timedelta(days=1), FIRST, LAST, LAST + timedelta(days=1)}
    while len(chosen) < days:
        chosen.add(FIRST + timedelta(days=rng.randint(-40, span + 40)))
    accounts: list[str] = []
    uses = 0

    def account() -> str:
        nonlocal uses
        if not accounts or uses >= 4:
            when = clock_now[0]
            made = services.applications.submit(actor, applicant(rng.choice(practice.locations)))
            seeded.applications.append((when, "approved"))
            account_id = made.detail.account_id or ""
            with transaction(db) as session:  # type: ignore[arg-type]
                session.execute(
                    update(Account).where(Account.account_id == account_id).values(credit_limit_cents=50_000_00)
                )
            accounts.append(account_id)
            uses = 0
        uses += 1
        return accounts[-1]

    clock_now = [datetime.now(UTC)]

    def at(when: datetime) -> None:
        clock_now[0] = when
        set_clock(when)

    for day in sorted(chosen):
        if day == FIRST:
            moments = [0, 3600]
        elif day == LAST:
            moments = [86_399, 86_000]
        elif day == FIRST - timedelta(days=1):
            moments = [86_399]
        elif day == LAST + timedelta(days=1):
            moments = [0]
        else:
            moments = sorted(rng.sample(range(60, 86_000), rng.randint(1, 3)))
        charged_today: list[tuple[str, str, int, int]] = []  # (txn, plan, amount, index)
        for second in sorted(moments):
            when = _at(day, second) + (timedelta(microseconds=999_999) if second == 86_399 else timedelta())
            at(when)
            # An application that is declined or waits for review now and then.
            if rng.random() < 0.4:
                status = rng.choice(("declined", "pending_review"))
                asked = 30_000_00 if status == "declined" else 20_000_00
                services.applications.submit(
                    actor, applicant(rng.choice(practice.locations), requested_cents=asked)
                )
                seeded.applications.append((when, status))
            plan = rng.choice(("DI6", "DI12", "STD"))
            amount = rng.randint(200_00, 1_500_00) + rng.randint(0, 99)
            location = rng.choice(practice.locations)
            result = services.money.charge(
                actor,
                {
                    "account_id": account(),
                    "location_id": location,
                    "plan_code": plan,
                    "amount_cents": amount,
                    "description": "Treatment",
                    "treatment_date": day.isoformat(),
                },
                key(),
            )
            seeded.charges.append((when, location, plan, amount, False))
            charged_today.append((result.transaction_id, plan, amount, len(seeded.charges) - 1))
        # Later the same day: maybe a void, maybe a partial refund.
        end_of_day = _at(day, 86_399) + timedelta(microseconds=999_999)
        boundary = day in (FIRST - timedelta(days=1), FIRST, LAST, LAST + timedelta(days=1))
        if charged_today and rng.random() < 0.25 and not boundary:
            txn, _plan, _amount, index = charged_today.pop(0)
            at(_at(day, 86_200))
            services.money.void(actor, txn, key())
            when, loc, plan, amount, _v = seeded.charges[index]
            seeded.charges[index] = (when, loc, plan, amount, True)
        if charged_today and rng.random() < 0.5:
            txn, plan, amount, _index = charged_today[0]
            refund = min(amount, rng.randint(1_00, 400_00))
            refund_at = end_of_day if boundary else _at(day, 86_300)
            at(refund_at)
            services.money.refund(actor, txn, {"amount_cents": refund, "reason": "adjustment"}, key())
            seeded.refunds.append((refund_at, plan, refund))
        at(_at(day + timedelta(days=1), 600))
        services.money.settle(day)
        seeded.settled_days.append(day)
    return seeded
