"""``providerctl portal settle | accrue-interest | payments post`` against a real, migrated portal
database (SQLite, or PostgreSQL in CI): the daily jobs and the payment feed, errors as one line."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from services import migrate
from services.common import db
from services.portal.permissions import Actor
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Account, Deposit, Transaction
from tests.support.infra import Databases, random_id
from tests.unit.portal.factories import applicant, make_practice

pytestmark = pytest.mark.integration


def test_settle_accrue_and_post_payments_from_the_command_line(
    databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    url = databases.new("portal")
    migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)})
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    engine = db.make_engine(url)
    try:
        factory = db.session_factory(engine)
        services = Services.build(Deps(factory, time.time))
        practice = make_practice(factory, "Command Line Dental")
        actor = Actor(random_id("sub-"), practice.practice_id, ("admin",))
        created = services.applications.submit(
            actor, applicant(practice.locations[0], requested_cents=3_000_00)
        )
        account_id = created.detail.account_id or ""
        number = (created.account_number or "").replace(" ", "")
        with db.transaction(factory) as session:
            session.execute(
                update(Account).where(Account.account_id == account_id).values(credit_limit_cents=3_000_00)
            )
        today = datetime.now(UTC).date()
        body = {
            "account_id": account_id,
            "location_id": practice.locations[0],
            "plan_code": "STD",
            "amount_cents": 1_000_00,
            "description": "Implant consult",
            "treatment_date": today.isoformat(),
        }
        services.money.charge(actor, body, random_id("cli-charge-"))

        key = random_id("feed-")
        argv = [
            "portal",
            "payments",
            "post",
            "--account",
            number,
            "--amount-cents",
            "25000",
            "--idempotency-key",
            key,
            "--reference",
            "feed-7",
        ]
        assert main(argv) == 0
        first = capsys.readouterr().out
        assert "balance 75000 cents" in first
        assert main(argv) == 0  # the same feed line again: the same payment, not a second one
        assert capsys.readouterr().out == first
        with factory() as session:
            payments = session.scalars(select(Transaction).where(Transaction.kind == "payment")).all()
            assert len(payments) == 1

        assert main(["portal", "settle", "--date", today.isoformat()]) == 0
        assert "1 deposits" in capsys.readouterr().out
        with factory() as session:
            deposit = session.scalars(
                select(Deposit).where(Deposit.practice_id == practice.practice_id)
            ).one()
            assert deposit.charges_cents == 1_000_00 and deposit.net_cents < 1_000_00

        later = today + timedelta(days=40)
        assert main(["portal", "accrue-interest", "--date", later.isoformat()]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"interest through {later.isoformat()}:")
        with factory() as session:
            account = session.get(Account, account_id)
            assert account is not None and account.balance_cents > 750_00  # standard APR accrued

        # Errors are one line, exit 1.
        bad = [
            "portal",
            "payments",
            "post",
            "--account",
            "0" * 16,
            "--amount-cents",
            "100",
            "--idempotency-key",
            random_id("feed-"),
        ]
        assert main(bad) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("providerctl: ") and "\n" not in err
        assert main([*argv[:5], "--amount-cents", "0", "--idempotency-key", random_id("feed-")]) == 1
        assert "amount_cents" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["portal", "settle", "--date", "yesterday"])
        monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
        assert main(["portal", "settle"]) == 1
        assert "db upgrade portal" in capsys.readouterr().err
    finally:
        engine.dispose()
