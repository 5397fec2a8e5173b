"""Practice profiles in a real portal database (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services import migrate
from services.common import db
from services.common.config import ConfigError
from services.portal import bootstrap, cards
from services.portal.store import practices
from tests.support.infra import Databases, random_id

pytestmark = pytest.mark.integration


def portal_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {"PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)}


def read(url: str, practice_id: str) -> practices.PracticeProfile | None:
    engine = db.make_engine(url)
    try:
        return practices.get(db.session_factory(engine), practice_id)
    finally:
        engine.dispose()


def test_add_practice_creates_then_renames(databases: Databases, tmp_path: Path) -> None:
    url = databases.new("portal")
    env = portal_env(url, tmp_path)
    migrate.upgrade("portal", env)
    practice_id = random_id("p-")

    bootstrap.add_practice(env, practice_id, "Maple Street Dental")
    assert read(url, practice_id) == practices.PracticeProfile(practice_id, "Maple Street Dental")
    bootstrap.add_practice(env, practice_id, "Maple Street Dental & Ortho")
    assert read(url, practice_id) == practices.PracticeProfile(practice_id, "Maple Street Dental & Ortho")


def test_seed_demo_is_idempotent(databases: Databases, tmp_path: Path) -> None:
    url = databases.new("portal")
    env = portal_env(url, tmp_path)
    migrate.upgrade("portal", env)
    started = time.monotonic()
    made = bootstrap.seed_demo(env)
    seconds = time.monotonic() - started
    assert bootstrap.seed_demo(env) == 0
    assert read(url, "demo-dental") == practices.PracticeProfile("demo-dental", "Sunny Dental Group")
    assert read(url, "demo-vet") == practices.PracticeProfile("demo-vet", "Copper Fern Veterinary")
    assert made == 200
    print(f"\nseed_demo: {made} applications in {seconds:.1f} s")
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            counts = dict(
                conn.exec_driver_sql("SELECT status, count(*) FROM applications GROUP BY status").all()
            )
            locations = dict(
                conn.exec_driver_sql("SELECT practice_id, count(*) FROM locations GROUP BY practice_id").all()
            )
            accounts = conn.exec_driver_sql("SELECT count(*) FROM accounts").scalar()
            promotions = conn.exec_driver_sql("SELECT count(*) FROM promotions").scalar()
            numbers = [n for (n,) in conn.exec_driver_sql("SELECT number FROM accounts").all()]
            kinds = dict(conn.exec_driver_sql("SELECT kind, count(*) FROM transactions GROUP BY kind").all())
            deposits = conn.exec_driver_sql("SELECT count(*) FROM deposits").scalar()
            # The ledger invariant for every account: balance = Σ signed ledger rows.
            broken = conn.exec_driver_sql(
                "SELECT a.account_id FROM accounts a LEFT JOIN transactions t ON t.account_id = a.account_id "
                "GROUP BY a.account_id, a.balance_cents HAVING a.balance_cents <> COALESCE(SUM(CASE "
                "WHEN t.kind IN ('charge', 'interest') THEN t.amount_cents ELSE -t.amount_cents END), 0)"
            ).all()
    finally:
        engine.dispose()
    assert set(counts) == {"approved", "pending_review", "declined"} and counts["approved"] == accounts
    assert locations == {"demo-dental": 3, "demo-vet": 2}
    assert promotions and all(cards.is_valid(number) for number in numbers)
    # A year of money (issue 7): charges, refunds, payments, interest and deposits.
    assert all(kinds.get(kind, 0) > 0 for kind in ("charge", "refund", "payment", "interest")), kinds
    assert deposits and deposits > 30 and broken == []
    assert seconds < 30  # ~2 s on SQLite; a slow shared PostgreSQL takes longer


def test_seed_demo_is_deterministic(databases: Databases, tmp_path: Path) -> None:
    """Two databases seeded on the same day hold the same demo data."""
    from datetime import date

    seen = []
    for _ in range(2):
        url = databases.new("portal")
        env = portal_env(url, tmp_path)
        migrate.upgrade("portal", env)
        bootstrap.seed_demo(env, today=date(2026, 11, 26))
        engine = db.make_engine(url)
        with engine.connect() as conn:
            seen.append(
                conn.exec_driver_sql("SELECT number, credit_limit_cents FROM accounts ORDER BY number").all()
                + conn.exec_driver_sql(
                    "SELECT a.number, t.kind, t.amount_cents, t.occurred_at FROM transactions t "
                    "JOIN accounts a ON a.account_id = t.account_id ORDER BY t.occurred_at, a.number, t.kind"
                ).all()
                + conn.exec_driver_sql(
                    "SELECT practice_id, business_date, net_cents FROM deposits ORDER BY practice_id, business_date"
                ).all()
            )
        engine.dispose()
    assert seen[0] == seen[1] and len(seen[0]) > 100


def test_an_unmigrated_database_says_what_to_run(databases: Databases, tmp_path: Path) -> None:
    env = portal_env(databases.new("portal"), tmp_path)
    with pytest.raises(ConfigError, match="providerctl db upgrade portal"):
        bootstrap.add_practice(env, random_id("p-"), "Nowhere Dental")


@pytest.mark.parametrize(("practice_id", "name"), [("", "Name"), ("p" * 65, "Name"), ("p-1", " ")])
def test_bad_input_is_one_clear_line(tmp_path: Path, practice_id: str, name: str) -> None:
    with pytest.raises(ConfigError):
        bootstrap.add_practice(portal_env("sqlite://", tmp_path), practice_id, name)


@pytest.mark.parametrize("service", ["auth", "notify", "portal"])
def test_migrations_match_the_models(databases: Databases, service: str) -> None:
    """Autogenerate finds nothing to do after upgrade: each service's hand-written revisions are complete."""
    import importlib

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    base = importlib.import_module(f"services.{service}.store.models").Base
    url = databases.new(service)
    migrate.upgrade(service, {f"{service.upper()}_DATABASE_URL": url})
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            # Trigram indexes exist only on PostgreSQL, only where pg_trgm could be created
            # (portal migration 0008), so the models leave them out.
            context = MigrationContext.configure(
                conn,
                opts={"include_object": lambda obj, name, kind, *_: not (kind == "index" and name.endswith("_trgm"))},
            )
            diff = compare_metadata(context, base.metadata)
    finally:
        engine.dispose()
    assert diff == []
