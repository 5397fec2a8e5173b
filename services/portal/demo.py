"""Demo data for the demo practices: locations, plan offers, ~200 cardholders with their
applications, and first purchases on promotional plans — so every page has something
to show on the first ``make run``.

Deterministic: one ``random.Random(SEED)`` makes every name, amount and id, so two
runs on the same day make the same data (dates count back from today). Decisions
come from the real engine (:func:`services.portal.decisions.decide`), so the mix
of approved, pending and declined is what the rules make of the incomes drawn.

One cardholder is fixed, for trying the look-up by hand: **Maria Alvarez**, born
1985-04-12, ZIP 97214, an applicant of Sunny Dental Group (demo-dental).
"""

from __future__ import annotations

import calendar
import random
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from services.portal import decisions, plans
from services.portal.service_layer.accounts import link, open_account
from services.portal.service_layer.applications import CONSENT_TEXT
from services.portal.service_layer.plan_offers import set_offered
from services.portal.service_layer.unit import new_id
from services.portal.store.models import Account, Application, Location, Promotion, Transaction

SEED = 20261126


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SEEDED_BY = "demo-seed"


@dataclass(frozen=True)
class DemoPractice:
    practice_id: str
    applicants: int
    locations: tuple[tuple[str, str, str, str, str, str], ...]  # name, street, city, state, zip, phone
    zips: tuple[str, ...]
    offers: tuple[str, ...]
    treatments: tuple[tuple[str, int, int], ...]  # description, low and high price in dollars


DENTAL = DemoPractice(
    "demo-dental",
    130,
    (
        ("Downtown", "410 SW Alder St", "Portland", "OR", "97204", "(503) 555-0141"),
        ("Hawthorne", "3620 SE Hawthorne Blvd", "Portland", "OR", "97214", "(503) 555-0178"),
        ("Lake Oswego", "15 Centerpointe Dr", "Lake Oswego", "OR", "97035", "(503) 555-0112"),
    ),
    ("97201", "97202", "97205", "97209", "97212", "97214", "97217", "97035", "97219", "97230"),
    ("DI6", "DI12", "DI18", "DI24", "RA24", "RA36", "STD"),
    (
        ("Crown, upper molar", 1100, 1600),
        ("Root canal and crown", 1800, 2800),
        ("Dental implant", 3200, 5200),
        ("Clear aligners", 3500, 6500),
        ("Periodontal scaling", 600, 1200),
        ("Wisdom teeth extraction", 900, 2200),
        ("Veneers (4)", 3600, 7200),
    ),
)
VET = DemoPractice(
    "demo-vet",
    70,
    (
        ("Riverside Animal Hospital", "120 Riverside Dr", "Asheville", "NC", "28801", "(828) 555-0190"),
        ("West Asheville Clinic", "745 Haywood Rd", "Asheville", "NC", "28806", "(828) 555-0163"),
    ),
    ("28801", "28803", "28804", "28805", "28806", "28715", "28787"),
    ("DI6", "DI12", "RA24", "STD"),
    (
        ("Cruciate ligament repair", 3200, 5200),
        ("Dental cleaning with extractions", 600, 1400),
        ("Emergency surgery", 1800, 4800),
        ("Mass removal and biopsy", 900, 2100),
        ("Hip dysplasia consult and imaging", 400, 900),
    ),
)
FIRST = _words(
    "James Olivia Liam Emma Noah Ava Elijah Sophia Lucas Mia Mason Amelia Ethan Harper Logan Evelyn "
    "Aiden Abigail Jackson Emily Sebastian Ella Mateo Elizabeth Jack Camila Owen Luna Theo Sofia "
    "Wyatt Avery Leo Mila Henry Aria Daniel Scarlett Grace Nora Hannah Priya Wei Kenji Fatima Omar"
)
LAST = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Patel Kim Chen"
)
STREETS = (
    "Oak St",
    "Maple Ave",
    "Cedar Ln",
    "Pine St",
    "Elm St",
    "Birch Rd",
    "Willow Way",
    "Lakeview Dr",
    "Park Ave",
    "Hillside Rd",
    "Sunset Blvd",
    "River Rd",
    "Meadow Ln",
    "Forest Ave",
    "Spring St",
)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randrange(8, 18), rng.randrange(60), rng.randrange(60)), UTC)


def _applicant(rng: random.Random, practice: DemoPractice, city: str, state: str, today: date) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    age = rng.choice([17, 19]) if rng.random() < 0.03 else rng.randrange(21, 82)
    born = today - timedelta(days=age * 365 + rng.randrange(300))
    return {
        "first_name": first,
        "last_name": last,
        "date_of_birth": born,
        "street": f"{rng.randrange(100, 9900)} {rng.choice(STREETS)}",
        "city": city,
        "state": state,
        "zip": rng.choice(practice.zips),
        "email": f"{first}.{last}{rng.randrange(10, 99)}@example.test".lower(),
        "phone": f"({rng.randrange(200, 990)}) 555-{rng.randrange(100, 199):04d}",
    }


def _money(rng: random.Random, low_dollars: int, high_dollars: int, step: int = 10) -> int:
    return rng.randrange(low_dollars // step, high_dollars // step + 1) * step * 100


def seed_practice(session: Session, practice: DemoPractice, rng: random.Random, today: date) -> int:
    """Seed one practice unless it already has locations; returns the applications made."""
    has_locations = session.scalar(
        select(func.count()).select_from(Location).where(Location.practice_id == practice.practice_id)
    )
    if has_locations:
        return 0
    now = datetime.combine(today, time(12), UTC)
    location_ids = []
    for name, street, city, state, zip_code, phone in practice.locations:
        location_id = new_id("loc", rng)
        location_ids.append(location_id)
        session.execute(
            insert(Location).values(
                location_id=location_id,
                practice_id=practice.practice_id,
                name=name,
                street=street,
                city=city,
                state=state,
                zip=zip_code,
                phone=phone,
                created_at=now - timedelta(days=400),
            )
        )
    set_offered(session, practice.practice_id, practice.offers, SEEDED_BY, now)
    city, state = practice.locations[0][2], practice.locations[0][3]
    for index in range(practice.applicants):
        holder = _applicant(rng, practice, city, state, today)
        if practice is DENTAL and index == 0:
            holder.update(
                first_name="Maria", last_name="Alvarez", date_of_birth=date(1985, 4, 12), zip="97214"
            )
        income = int(min(250_000, max(8_000, rng.lognormvariate(10.9, 0.55))) // 500 * 500) * 100
        housing = int(income / 12 * rng.uniform(0.12, 0.58)) // 100 * 100
        description, low, high = rng.choice(practice.treatments)
        requested = _money(rng, low, high)
        if index == 0:
            income, housing, requested = 72_000_00, 1_650_00, 4_200_00
        submitted_day = today - timedelta(days=rng.randrange(0, 330) if index else 20)
        submitted = _at(submitted_day, rng)
        facts = decisions.Facts(holder["date_of_birth"], income, housing, requested, True)
        decision = decisions.decide(facts, submitted_day)
        location_index = rng.randrange(len(location_ids))
        account_id = None
        if decision.outcome is decisions.Outcome.APPROVED:
            account_id, _number = open_account(
                session,
                holder=holder,
                credit_limit_cents=decision.credit_limit_cents,
                practice_id=practice.practice_id,
                opened_by=SEEDED_BY,
                now=submitted,
                rng=rng,
            )
            purchased = rng.random() < 0.65 or index == 0
            if not purchased and rng.random() < 0.15:
                # A few accounts closed by their holders, or suspended by the issuer, for the status filter.
                status = ("closed", "suspended")[index % 2]
                session.execute(update(Account).where(Account.account_id == account_id).values(status=status))
            if purchased:
                _first_purchase(
                    session,
                    rng,
                    practice,
                    account_id,
                    location_ids[location_index],
                    description,
                    min(requested, decision.credit_limit_cents),
                    submitted_day,
                    today,
                )
        session.execute(
            insert(Application).values(
                application_id=new_id("app", rng),
                practice_id=practice.practice_id,
                location_id=location_ids[location_index],
                annual_income_cents=income,
                monthly_housing_cents=housing,
                requested_cents=requested,
                consent=True,
                consent_text=CONSENT_TEXT,
                consent_at=submitted,
                status=decision.outcome.value,
                credit_limit_cents=decision.credit_limit_cents,
                reasons="\n".join(reason.value for reason in decision.reasons),
                review_notes="\n".join(decision.review_notes),
                account_id=account_id,
                submitted_by=SEEDED_BY,
                submitted_by_name="Demo data",
                submitted_at=submitted,
                **holder,
            )
        )
    return practice.applicants


def _first_purchase(
    session: Session,
    rng: random.Random,
    practice: DemoPractice,
    account_id: str,
    location_id: str,
    description: str,
    amount: int,
    day: date,
    today: date,
) -> None:
    """A purchase soon after approval, on a plan whose promotion is still running today."""
    charged = min(today, day + timedelta(days=rng.randrange(0, 10)))
    choices = [
        plan
        for code in practice.offers
        if (plan := plans.BY_CODE[code]).min_purchase_cents <= amount
        and (plan.kind is plans.PlanKind.STANDARD or _add_months(charged, plan.months) > today)
    ]
    plan = rng.choice(choices)
    transaction_id = new_id("txn", rng)
    session.execute(
        insert(Transaction).values(
            transaction_id=transaction_id,
            account_id=account_id,
            practice_id=practice.practice_id,
            location_id=location_id,
            kind="charge",
            amount_cents=amount,
            plan_code=plan.code,
            description=description,
            authorization_code="".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)),
            occurred_at=_at(charged, rng),
            created_at=_at(charged, rng),
        )
    )
    if plan.is_promotional:
        session.execute(
            insert(Promotion).values(
                promotion_id=new_id("prm", rng),
                account_id=account_id,
                transaction_id=transaction_id,
                plan_code=plan.code,
                original_cents=amount,
                balance_cents=amount,
                starts_on=charged,
                ends_on=_add_months(charged, plan.months),
            )
        )
    session.execute(
        update(Account)
        .where(Account.account_id == account_id)
        .values(balance_cents=Account.balance_cents + amount)
    )


def share_patients(session: Session, rng: random.Random, today: date, count: int = 6) -> None:
    """A few vet clients are dental patients too: their accounts show the other provider's purchase."""
    shared = session.scalars(
        select(Account.account_id)
        .where(Account.opened_by_practice_id == VET.practice_id)
        .order_by(Account.account_id)
    ).all()[:count]
    for account_id in shared:
        link(
            session,
            DENTAL.practice_id,
            account_id,
            "lookup",
            SEEDED_BY,
            datetime.combine(today, time(9), UTC),
        )


def seed(session: Session, today: date) -> int:
    """Seed the demo practices that have no locations yet; returns the applications made."""
    rng = random.Random(SEED)  # noqa: S311 - demo data must repeat; nothing secret is drawn
    made = 0
    for practice in (DENTAL, VET):
        made += seed_practice(session, practice, rng, today)
    if made:
        share_patients(session, rng, today)
        # A year of refunds, voids, payments, interest and deposits (issue 7).
        from services.portal import demo_money

        session.flush()
        demo_money.seed_year(session, (DENTAL.practice_id, VET.practice_id), today)
    return made
