"""Races on the money rules against PostgreSQL (issue 7): threads with their own sessions hit
one charge or one Idempotency-Key at the same moment, and the rules still hold.

SQLite is skipped: it serialises writers (``BEGIN IMMEDIATE``), so nothing can race there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from services import migrate
from services.common import db
from services.portal import ledger
from services.portal.errors import IdempotencyInFlight, ValidationError
from services.portal.permissions import Actor
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Account, Transaction
from tests.support.infra import Databases, random_id
from tests.unit.portal.factories import PracticeFixture, applicant, make_practice

pytestmark = pytest.mark.integration

ROUNDS = 10


@pytest.fixture
def world(databases: Databases, tmp_path: Path) -> Iterator[tuple[Services, Any, PracticeFixture]]:
    url = databases.new("portal")
    if url.startswith("sqlite"):
        pytest.skip(
            "SQLite serialises writers (BEGIN IMMEDIATE): the races need PostgreSQL (PC_TEST_DATABASE_URL)"
        )
    migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)})
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    try:
        yield Services.build(Deps(factory, time.time)), factory, make_practice(factory, "Race Dental")
    finally:
        engine.dispose()


def _account(services: Services, factory: Any, practice: PracticeFixture, actor: Actor) -> str:
    created = services.applications.submit(actor, applicant(practice.locations[0], requested_cents=5_000_00))
    account_id = created.detail.account_id or ""
    with db.transaction(factory) as session:
        session.execute(
            update(Account).where(Account.account_id == account_id).values(credit_limit_cents=5_000_00)
        )
    return account_id


def _body(practice: PracticeFixture, account_id: str, amount: int) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "location_id": practice.locations[0],
        "plan_code": "STD",
        "amount_cents": amount,
        "description": "Race",
        "treatment_date": "2027-01-15",
    }


def _at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each returns its result or its exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_refunds_of_one_charge_at_once_never_exceed_it(
    world: tuple[Services, Any, PracticeFixture], capsys: pytest.CaptureFixture[str]
) -> None:
    services, factory, practice = world
    actor = practice.actor("manager")
    account_id = _account(services, factory, practice, actor)
    outcomes: dict[str, int] = {}
    for _ in range(ROUNDS):
        charge = services.money.charge(actor, _body(practice, account_id, 800_00), random_id("race-charge-"))
        results = _at_once(
            *(
                (
                    lambda: services.money.refund(
                        actor, charge.transaction_id, {"amount_cents": 500_00}, random_id("race-refund-")
                    )
                )
                for _ in range(2)
            )
        )
        ok = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(ok) == 1 and len(refused) == 1, results
        key = f"{len(ok)} refunded, {len(refused)} refused"
        outcomes[key] = outcomes.get(key, 0) + 1
        with factory() as session:
            refunded = session.scalar(
                select(func.coalesce(func.sum(Transaction.amount_cents), 0)).where(
                    Transaction.kind == "refund", Transaction.related_id == charge.transaction_id
                )
            )
            assert refunded == 500_00 <= charge.amount_cents
    with factory() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.balance_cents == ledger.ledger_sum(session, account_id)
        assert account.balance_cents == ROUNDS * 300_00
    with capsys.disabled():
        print(f"\nrefund race ×{ROUNDS} (PostgreSQL): {outcomes}")


def test_one_idempotency_key_sent_twice_at_once_makes_one_charge(
    world: tuple[Services, Any, PracticeFixture], capsys: pytest.CaptureFixture[str]
) -> None:
    services, factory, practice = world
    actor = practice.actor("front_desk")
    account_id = _account(services, factory, practice, actor)
    outcomes: dict[str, int] = {}
    for _ in range(ROUNDS):
        key = random_id("race-key-")
        body = _body(practice, account_id, 100_00)
        results = _at_once(*((lambda: services.money.charge(actor, dict(body), key)) for _ in range(2)))
        done = [r for r in results if not isinstance(r, Exception)]
        busy = [r for r in results if isinstance(r, IdempotencyInFlight)]
        assert len(done) + len(busy) == 2 and done, results  # the other got 409, or the same result
        assert len({r.transaction_id for r in done}) == 1
        label = "same result" if len(done) == 2 else "one 409"
        outcomes[label] = outcomes.get(label, 0) + 1
    with factory() as session:
        charges = session.scalar(
            select(func.count()).where(Transaction.account_id == account_id, Transaction.kind == "charge")
        )
        account = session.get(Account, account_id)
        assert charges == ROUNDS  # one charge per key, never two
        assert account is not None and account.balance_cents == ROUNDS * 100_00
    with capsys.disabled():
        print(f"\nidempotency race ×{ROUNDS} (PostgreSQL): {outcomes}")
