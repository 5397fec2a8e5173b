"""The transactions list's search, filters and pages against the migrated database (SQLite, or
PostgreSQL with its trigram indexes when ``PC_TEST_DATABASE_URL`` is set), checked page by page
against the same selection computed here in Python from the rows the test wrote.

The search is a union of one query per field whose branches stop early (``MoneyService._matches``);
these tests hold it to the plain definition: every matching row of the practice, newest first,
each once, on the right page, and a total that is exact below the count cap and a lower bound
above it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from services import migrate
from services.common import db
from services.portal.permissions import Actor
from services.portal.service_layer import Services, unit
from services.portal.service_layer.unit import Deps, new_id
from services.portal.store.models import Account, Cardholder, Transaction
from tests.support.infra import Databases
from tests.unit.portal.factories import PracticeFixture, applicant, make_practice

pytestmark = pytest.mark.integration

NAMES = ("Nguyen", "Nguyen-Park", "Park", "O'Brien", "Garcia", "Lee_Ann", "Chen")
TREATMENTS = ("Crown, tooth 14", "Cleaning", "Implant consult", "Park Ave clinic crown", "100% whitening")
KINDS = ("charge", "refund", "payment", "interest")
BASE = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    transaction_id: str
    account_id: str
    kind: str
    location_id: str
    description: str
    authorization_code: str
    occurred_at: datetime


@dataclass
class Ledger:
    services: Services
    practice: PracticeFixture
    rows: list[Row]
    last_name: dict[str, str]  # account id -> cardholder's last name
    number: dict[str, str]  # account id -> card number

    @property
    def actor(self) -> Actor:
        return self.practice.actor()


def _accounts(services: Services, practice: PracticeFixture) -> dict[str, str]:
    """One account per name in NAMES, opened by ``practice``; account id -> last name."""
    made = {}
    for name in NAMES:
        result = services.applications.submit(
            practice.actor("admin"), applicant(practice.locations[0], last_name=name)
        )
        assert result.detail.account_id
        made[result.detail.account_id] = name
    return made


def _write(
    factory: Any, practice: PracticeFixture, accounts: list[str], count: int, rng: random.Random
) -> list[Row]:
    """``count`` ledger rows for ``practice`` with chosen text, kinds, places and times (some
    sharing a time, so the order's tie-break is exercised). The list only reads the ledger,
    so the rows are written directly rather than through charges and refunds."""
    rows = []
    for index in range(count):
        rows.append(
            Row(
                transaction_id=new_id("tx"),
                account_id=rng.choice(accounts),
                kind=rng.choice(KINDS),
                location_id=rng.choice(practice.locations),
                description=rng.choice(TREATMENTS),
                authorization_code="".join(rng.choice("ABCDEFGH0123456789") for _ in range(6)),
                occurred_at=BASE - timedelta(hours=index // 3),
            )
        )
    with db.transaction(factory) as session:
        session.execute(
            insert(Transaction),
            [
                {
                    **row.__dict__,
                    "practice_id": practice.practice_id,
                    "amount_cents": 100_00,
                    "plan_code": "STD",
                    "created_at": row.occurred_at,
                }
                for row in rows
            ],
        )
    return rows


@pytest.fixture
def ledger(databases: Databases, tmp_path: Path) -> Iterator[Ledger]:
    url = databases.new("portal")
    migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)})
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    services = Services.build(Deps(factory, time.time))
    rng = random.Random(11)  # noqa: S311 - test data
    try:
        ours = make_practice(factory, "Search Dental", locations=3)
        theirs = make_practice(factory, "Other Dental")
        mine = _accounts(services, ours)
        # The other practice has the same names and treatments: none of its rows may show.
        _write(factory, theirs, list(_accounts(services, theirs)), 40, rng)
        rows = _write(factory, ours, list(mine), 150, rng)
        with factory() as session:
            numbers = dict(session.execute(select(Account.account_id, Account.number)).tuples().all())
            names = dict(
                session.execute(
                    select(Account.account_id, Cardholder.last_name).join(
                        Cardholder, Cardholder.cardholder_id == Account.cardholder_id
                    )
                )
                .tuples()
                .all()
            )
        assert all(names[a] == n for a, n in mine.items())
        yield Ledger(services, ours, rows, {a: names[a] for a in mine}, {a: numbers[a] for a in mine})
    finally:
        engine.dispose()


def _expected(ledger: Ledger, query: dict[str, str]) -> list[str]:
    """The list's definition, independently: the practice's rows that match, newest first."""
    q = query.get("q", "")
    term = q.lower()

    def found(row: Row) -> bool:
        if not q:
            return True
        return (
            term in row.description.lower()
            or row.authorization_code.lower() == q.lower()
            or term in ledger.last_name[row.account_id].lower()
            or (term.isdigit() and len(term) == 4 and ledger.number[row.account_id].endswith(term))
        )

    chosen = [
        row
        for row in ledger.rows
        if found(row)
        and query.get("kind", row.kind) == row.kind
        and query.get("location_id", row.location_id) == row.location_id
        and (not query.get("date_from") or row.occurred_at.date() >= date.fromisoformat(query["date_from"]))
        and (not query.get("date_to") or row.occurred_at.date() <= date.fromisoformat(query["date_to"]))
    ]
    chosen.sort(key=lambda row: row.transaction_id)
    chosen.sort(key=lambda row: row.occurred_at, reverse=True)
    return [row.transaction_id for row in chosen]


def _all_pages(
    ledger: Ledger, query: dict[str, str], per_page: int
) -> tuple[list[str], list[tuple[int, bool]]]:
    """Every page's ids in order, and each page's (total, total_is_lower_bound)."""
    ids: list[str] = []
    totals = []
    for number in range(1, 200):
        page = ledger.services.money.transactions(
            ledger.actor, {**query, "page": str(number), "per_page": str(per_page)}, text=True
        )
        assert page.page == number
        ids += [row.transaction_id for row in page.items]
        totals.append((page.total, page.total_is_lower_bound))
        if not page.has_next:
            return ids, totals
    raise AssertionError("more than 200 pages")


def _queries(ledger: Ledger) -> list[dict[str, str]]:
    some = ledger.rows[17]
    account = ledger.rows[5].account_id
    place = ledger.practice.locations[1]
    return [
        {},
        {"q": "nguyen"},  # two names, one inside the other
        {"q": "NGUYEN"},
        {"q": "park"},  # a name and a treatment: rows found by both count once
        {"q": "crown"},
        {"q": some.authorization_code.lower()},  # a code, whatever its case
        {"q": ledger.number[account][-4:]},  # last four
        {"q": "%"},  # no wildcards from users: only the treatment with a percent sign
        {"q": "_"},  # likewise: only Lee_Ann
        {"q": "zzqx"},  # nothing
        {"q": "nguyen", "kind": "refund"},
        {"q": "park", "location_id": place},
        {"q": "crown", "kind": "charge", "location_id": place},
        {"kind": "payment", "location_id": place},
        {"location_id": place},
        {"q": "e", "date_from": "2027-01-14", "date_to": "2027-01-14"},
    ]


@pytest.mark.parametrize("per_page", [7, 25])
def test_every_search_and_filter_gives_each_match_once_newest_first(ledger: Ledger, per_page: int) -> None:
    for query in _queries(ledger):
        expected = _expected(ledger, query)
        ids, totals = _all_pages(ledger, query, per_page)
        assert ids == expected, query
        assert {total for total, _ in totals} == {len(expected)} and not any(lower for _, lower in totals), (
            query
        )
    # The checks above are not vacuous: the data gives each kind of match something to find.
    assert len(_expected(ledger, {"q": "park"})) > len(_expected(ledger, {"q": "nguyen-park"})) > 0
    assert 0 < len(_expected(ledger, {"q": "%"})) < len(ledger.rows)


def test_past_the_count_cap_a_search_total_is_a_lower_bound_and_every_match_is_reachable(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unit, "COUNT_CAP", 10)
    for query in ({"q": "park"}, {"q": "crown"}, {"q": "e", "location_id": ledger.practice.locations[0]}):
        expected = _expected(ledger, query)
        assert len(expected) > 2 * 10 + 5, query  # big enough to cross the cap
        ids, totals = _all_pages(ledger, query, 5)
        assert ids == expected, query
        # Pages up to the cap see "at least 10"; the last pages see the exact total.
        assert totals[0] == (10, True) and totals[-1] == (len(expected), False), (query, totals)
        assert all(total <= len(expected) for total, _ in totals)
