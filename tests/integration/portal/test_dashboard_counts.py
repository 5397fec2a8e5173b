"""The dashboard's account count is kept by the database (migration 0009's table and triggers),
on SQLite and on PostgreSQL: filled from the links that existed before the migration, moved by
every link made or removed afterwards, whatever made it, and never another practice's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select

from services import migrate
from services.common import db
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Account, PracticeAccount
from tests.support.infra import Databases
from tests.unit.portal.factories import PracticeFixture, applicant, make_practice

pytestmark = pytest.mark.integration


@pytest.fixture
def database(databases: Databases, tmp_path: Path) -> Iterator[tuple[dict[str, str], Any]]:
    env = {"PORTAL_DATABASE_URL": databases.new("portal"), "PC_VAR_DIR": str(tmp_path)}
    migrate.upgrade("portal", env, "0008")  # the schema before the counts
    engine = db.make_engine(env["PORTAL_DATABASE_URL"])
    try:
        yield env, db.session_factory(engine)
    finally:
        engine.dispose()


def _open(services: Services, practice: PracticeFixture, n: int) -> list[str]:
    """``n`` approved applications: each opens an account linked to ``practice``."""
    ids = []
    for _ in range(n):
        made = services.applications.submit(practice.actor("admin"), applicant(practice.locations[0]))
        assert made.detail.account_id
        ids.append(made.detail.account_id)
    return ids


def _counted(factory: Any, practice: PracticeFixture) -> int:
    with factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(PracticeAccount)
                .where(PracticeAccount.practice_id == practice.practice_id)
            )
            or 0
        )


def test_the_dashboards_account_count_is_kept_by_the_database(database: tuple[dict[str, str], Any]) -> None:
    env, factory = database
    services = Services.build(Deps(factory, time.time))
    maple, birch, empty = (make_practice(factory, name) for name in ("Maple", "Birch", "Empty"))
    maple_accounts = _open(services, maple, 3)
    birch_accounts = _open(services, birch, 2)

    migrate.upgrade("portal", env)  # 0009 fills the counts from the links made above

    def shown(practice: PracticeFixture) -> int:
        return services.practice.summary(practice.actor()).accounts

    assert (shown(maple), shown(birch), shown(empty)) == (3, 2, 0)

    # Links made afterwards, by an application and by a look-up of another practice's account.
    _open(services, maple, 2)
    services.accounts.lookup(maple.actor(), {"account_number": _number(factory, birch_accounts[0]), "zip": "97214"})
    assert shown(maple) == _counted(factory, maple) == 6
    assert shown(birch) == _counted(factory, birch) == 2

    # One statement (multi-row VALUES, not executemany) linking accounts to two practices, as a
    # bulk import would: PostgreSQL's statement trigger sees both practices in one transition table.
    bulk = ((empty, maple_accounts[0]), (empty, maple_accounts[1]), (birch, maple_accounts[2]))
    with db.transaction(factory) as session:
        session.execute(
            insert(PracticeAccount).values(
                [
                    {
                        "practice_id": p.practice_id,
                        "account_id": a,
                        "reason": "lookup",
                        "linked_by": "import",
                        "linked_at": datetime.now(UTC),
                    }
                    for p, a in bulk
                ]
            )
        )
    assert (shown(empty), shown(birch), shown(maple)) == (2, 3, 6)
    assert (_counted(factory, empty), _counted(factory, birch)) == (2, 3)

    # A link removed by hand (no code path removes one) is taken off too.
    with db.transaction(factory) as session:
        session.execute(
            delete(PracticeAccount).where(
                PracticeAccount.practice_id == maple.practice_id,
                PracticeAccount.account_id == birch_accounts[0],
            )
        )
    assert shown(maple) == _counted(factory, maple) == 5
    assert shown(birch) == 3 and shown(empty) == 2

    # One statement removing links of two practices.
    with db.transaction(factory) as session:
        session.execute(
            delete(PracticeAccount).where(
                PracticeAccount.account_id.in_([maple_accounts[0], maple_accounts[2]]),
                PracticeAccount.practice_id.in_([empty.practice_id, birch.practice_id]),
            )
        )
    assert (shown(empty), shown(birch), shown(maple)) == (1, 2, 5)
    assert (_counted(factory, empty), _counted(factory, birch)) == (1, 2)


def _number(factory: Any, account_id: str) -> str:
    with factory() as session:
        return str(session.scalar(select(Account.number).where(Account.account_id == account_id)))
