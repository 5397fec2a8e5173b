"""Each rule of issue 6 through the service layer (in-memory SQLite, fake clock)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from services.common.db import transaction
from services.portal import audit, cards
from services.portal.errors import Forbidden, NotFound, ValidationError
from services.portal.store.models import (
    Account,
    Application,
    AuditEntry,
    Cardholder,
    PracticeAccount,
)
from tests.unit.portal.factories import PracticeFixture, World, applicant, make_practice, make_world


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def practice(world: World) -> PracticeFixture:
    return make_practice(world.db, "Maple Dental")


@pytest.fixture
def other(world: World) -> PracticeFixture:
    return make_practice(world.db, "Birch Vision")


def entries(world: World, **where: Any) -> list[AuditEntry]:
    with world.db() as session:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return list(session.scalars(query).all())


def count(world: World, model: type) -> int:
    with world.db() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --- prequalification ---------------------------------------------------------------------------

PREQUAL = {
    "first_name": "Ana",
    "last_name": "Reyes",
    "street": "1 Elm St",
    "city": "Portland",
    "state": "OR",
    "zip": "97214",
    "annual_income_cents": 45_000_00,
}


def test_prequalification_answers_and_stores_nothing_but_an_audit_line(world: World, practice: PracticeFixture) -> None:
    actor = practice.actor("front_desk")
    result = world.services.prequalification.check(actor, PREQUAL)
    assert result.likely and result.estimated_limit_cents == 9_000_00
    unlikely = world.services.prequalification.check(actor, {**PREQUAL, "annual_income_cents": 9_000_00})
    assert not unlikely.likely
    assert count(world, Cardholder) == count(world, Application) == 0
    logged = entries(world, action="prequalification.check")
    assert len(logged) == 2
    for entry in logged:
        assert entry.actor_sub == actor.sub and entry.ip == "203.0.113.7" and entry.request_id == actor.request_id
        assert "Reyes" not in entry.detail and "45000" not in entry.detail and entry.object_id == ""


def test_read_only_cannot_prequalify(world: World, practice: PracticeFixture) -> None:
    with pytest.raises(Forbidden):
        world.services.prequalification.check(practice.actor("read_only"), PREQUAL)
    assert [e.outcome for e in entries(world)] == ["denied"]


# --- applications -------------------------------------------------------------------------------


def test_an_approved_application_opens_an_account_linked_to_the_practice(world: World, practice: PracticeFixture) -> None:
    actor = practice.actor("front_desk", name="Fran Desk")
    result = world.services.applications.submit(actor, applicant(practice.locations[0]))
    detail = result.detail
    assert detail.summary.status == "approved"
    assert detail.summary.credit_limit_cents == 12_000_00
    assert detail.consent and "credit report" in detail.consent_text
    assert result.account_number is not None
    number = result.account_number.replace(" ", "")
    assert cards.is_valid(number)
    assert detail.masked_account_number == f"•••• {number[-4:]}"
    with world.db() as session:
        link = session.get(PracticeAccount, (practice.practice_id, detail.account_id))
        account = session.get(Account, detail.account_id)
    assert link is not None and link.reason == "applied"
    assert account is not None and account.status == "active" and account.balance_cents == 0
    [entry] = entries(world, action="application.submit")
    assert entry.object_id == detail.summary.application_id and entry.detail == "decision approved"
    # The full number is never shown again: the application's own page has the mask only.
    again = world.services.applications.get(actor, detail.summary.application_id)
    assert again.masked_account_number == detail.masked_account_number


def test_a_declined_application_has_reasons_and_no_account(world: World, practice: PracticeFixture) -> None:
    result = world.services.applications.submit(
        practice.actor("front_desk"),
        applicant(practice.locations[0], annual_income_cents=10_000_00, monthly_housing_cents=800_00),
    )
    assert result.detail.summary.status == "declined"
    assert result.detail.reasons == (
        "Income insufficient for amount of credit requested",
        "Excessive obligations in relation to income",
    )
    assert result.account_number is None and result.detail.account_id is None
    assert count(world, Account) == 0


def test_a_pending_application_opens_no_account_yet(world: World, practice: PracticeFixture) -> None:
    result = world.services.applications.submit(
        practice.actor("front_desk"), applicant(practice.locations[0], requested_cents=20_000_00)
    )
    assert result.detail.summary.status == "pending_review"
    assert result.detail.review_notes == ("requested amount above the automatic credit line",)
    assert count(world, Account) == 0


def test_an_underage_applicant_is_declined(world: World, practice: PracticeFixture) -> None:
    result = world.services.applications.submit(
        practice.actor("front_desk"), applicant(practice.locations[0], date_of_birth="2010-06-01")
    )
    assert result.detail.reasons == ("Applicant does not meet the minimum age requirement to contract",)


def test_consent_is_required(world: World, practice: PracticeFixture) -> None:
    with pytest.raises(ValidationError) as caught:
        world.services.applications.submit(practice.actor("front_desk"), applicant(practice.locations[0], consent=False))
    assert "consent" in caught.value.fields
    assert count(world, Application) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("annual_income_cents", 10.5),
        ("annual_income_cents", "1e2"),
        ("annual_income_cents", True),
        ("requested_cents", 0),
        ("requested_cents", -5),
        ("date_of_birth", "2027-02-30"),
        ("date_of_birth", "2030-01-01"),
        ("state", "ZZ"),
        ("zip", "9721"),
        ("first_name", "   "),
        ("first_name", "x" * 61),
        ("email", "not-an-email"),
        ("location_id", "loc_" + "0" * 16),
    ],
)
def test_bad_input_names_the_field(world: World, practice: PracticeFixture, field: str, value: object) -> None:
    body = {**applicant(practice.locations[0]), field: value}
    with pytest.raises(ValidationError) as caught:
        world.services.applications.submit(practice.actor("front_desk"), body)
    assert list(caught.value.fields) == [field]


def test_unknown_fields_are_refused_not_ignored(world: World, practice: PracticeFixture) -> None:
    body = applicant(practice.locations[0], practice_id="someone-else", credit_limit_cents=99_999_00)
    with pytest.raises(ValidationError) as caught:
        world.services.applications.submit(practice.actor("admin"), body)
    assert set(caught.value.fields) == {"practice_id", "credit_limit_cents"}


def test_another_practices_location_is_refused(world: World, practice: PracticeFixture, other: PracticeFixture) -> None:
    with pytest.raises(ValidationError) as caught:
        world.services.applications.submit(practice.actor("admin"), applicant(other.locations[0]))
    assert caught.value.fields == {"location_id": "is not one of this practice's locations"}


def test_read_only_may_look_but_not_apply(world: World, practice: PracticeFixture) -> None:
    with pytest.raises(Forbidden):
        world.services.applications.submit(practice.actor("read_only"), applicant(practice.locations[0]))
    assert world.services.applications.list(practice.actor("read_only"), {}).total == 0


def test_application_list_searches_filters_and_pages(world: World, practice: PracticeFixture) -> None:
    actor = practice.actor("manager")
    for index in range(7):
        world.services.applications.submit(
            actor,
            applicant(
                practice.locations[index % 2],
                last_name=f"Quinn{index}" if index < 3 else f"Other{index}",
                annual_income_cents=60_000_00 if index % 3 else 9_000_00,
            ),
        )
        world.clock.advance(60)
    everything = world.services.applications.list(actor, {"per_page": 3})
    assert everything.total == 7 and len(everything.items) == 3 and everything.pages == 3
    assert everything.items[0].applicant_name.endswith("Other6")  # newest first
    last = world.services.applications.list(actor, {"per_page": 3, "page": 3})
    assert len(last.items) == 1
    assert world.services.applications.list(actor, {"q": "quinn"}).total == 3
    assert world.services.applications.list(actor, {"status": "declined"}).total == 3
    assert world.services.applications.list(actor, {"location_id": practice.locations[1]}).total == 3
    assert world.services.applications.list(actor, {"q": "%"}).total == 0  # no wildcards from users
    with pytest.raises(ValidationError):
        world.services.applications.list(actor, {"per_page": 1000})
    assert [e.action for e in entries(world, outcome="ok")].count("application.list") == 6


# --- accounts and the look-up -------------------------------------------------------------------


def _approved(world: World, practice: PracticeFixture, **overrides: Any) -> tuple[str, str]:
    result = world.services.applications.submit(practice.actor("admin"), applicant(practice.locations[0], **overrides))
    assert result.account_number
    return result.detail.account_id or "", result.account_number.replace(" ", "")


def test_a_practice_sees_only_linked_accounts(world: World, practice: PracticeFixture, other: PracticeFixture) -> None:
    ours, _ = _approved(world, practice)
    theirs, _ = _approved(world, other)
    actor = practice.actor("read_only")
    listed = world.services.accounts.list(actor, {})
    assert [a.account_id for a in listed.items] == [ours]
    detail = world.services.accounts.get(actor, ours)
    assert detail.summary.available_credit_cents == detail.summary.credit_limit_cents == 12_000_00
    assert detail.payments == () and detail.transactions == () and detail.promotions == ()
    with pytest.raises(NotFound):
        world.services.accounts.get(actor, theirs)
    with pytest.raises(NotFound):
        world.services.accounts.transactions(actor, theirs)
    [denied] = entries(world, action="account.view", outcome="not_found")
    assert denied.object_id == theirs and denied.practice_id == practice.practice_id


def test_lookup_by_number_and_zip_links_the_account_and_is_audited(
    world: World, practice: PracticeFixture, other: PracticeFixture
) -> None:
    account_id, number = _approved(world, other, zip="97035")
    actor = practice.actor("front_desk")
    assert world.services.accounts.lookup(actor, {"account_number": number, "zip": "97214"}) == []
    [miss] = entries(world, action="account.lookup")
    assert miss.outcome == "no_match" and number not in miss.detail
    found = world.services.accounts.lookup(actor, {"account_number": f"{number[:4]} {number[4:8]}-{number[8:]}", "zip": "97035-1234"})
    assert [a.account_id for a in found] == [account_id]
    assert found[0].masked_number == f"•••• {number[-4:]}"
    assert world.services.accounts.get(actor, account_id).link_reason == "lookup"
    assert entries(world, action="account.lookup", outcome="ok")[0].object_id == account_id


def test_lookup_by_name_birth_date_and_zip(world: World, practice: PracticeFixture, other: PracticeFixture) -> None:
    account_id, _ = _approved(world, other, first_name="Lena", last_name="Okafor", date_of_birth="1979-12-02")
    actor = practice.actor("front_desk")
    query = {"first_name": "lena", "last_name": "OKAFOR", "date_of_birth": "1979-12-02", "zip": "97214"}
    assert [a.account_id for a in world.services.accounts.lookup(actor, query)] == [account_id]
    assert world.services.accounts.lookup(actor, {**query, "date_of_birth": "1979-12-03"}) == []


@pytest.mark.parametrize(
    "query",
    [
        {"zip": "97214"},
        {"account_number": "6045871234567890"},
        {"account_number": "6045871234567891", "zip": "97214"},  # fails the Luhn check
        {"account_number": "6045871234567890", "first_name": "A", "zip": "97214"},
        {"first_name": "A", "last_name": "B", "zip": "97214"},
    ],
)
def test_lookup_needs_one_complete_set_of_details(world: World, practice: PracticeFixture, query: dict) -> None:
    with pytest.raises(ValidationError):
        world.services.accounts.lookup(practice.actor("front_desk"), query)


def test_account_list_searches_by_name_or_last_four_and_status(world: World, practice: PracticeFixture) -> None:
    first, number = _approved(world, practice, last_name="Zephyr")
    second, _ = _approved(world, practice, last_name="Abbott")
    actor = practice.actor("admin")
    assert [a.account_id for a in world.services.accounts.list(actor, {"q": "zeph"}).items] == [first]
    assert [a.account_id for a in world.services.accounts.list(actor, {"q": number[-4:]}).items] == [first]
    with transaction(world.db) as session:
        session.execute(update(Account).where(Account.account_id == second).values(status="closed"))
    assert [a.account_id for a in world.services.accounts.list(actor, {"status": "closed"}).items] == [second]


def test_available_credit_is_never_negative(world: World, practice: PracticeFixture) -> None:
    account_id, _ = _approved(world, practice)
    with transaction(world.db) as session:
        session.execute(update(Account).where(Account.account_id == account_id).values(balance_cents=12_500_00))
    assert world.services.accounts.get(practice.actor("admin"), account_id).summary.available_credit_cents == 0


# --- plans and the estimator --------------------------------------------------------------------


def test_a_new_practice_offers_the_defaults_and_a_manager_can_change_them(world: World, practice: PracticeFixture) -> None:
    offered = [p.code for p in world.services.plans.catalogue(practice.actor("read_only")) if p.offered]
    assert offered == ["DI6", "DI12", "STD"]
    changed = world.services.plans.offer(practice.actor("manager"), {"plan_codes": ["DI24", "RA60"]})
    assert [p.code for p in changed if p.offered] == ["DI24", "RA60"]
    with pytest.raises(Forbidden):
        world.services.plans.offer(practice.actor("front_desk"), {"plan_codes": ["STD"]})
    with pytest.raises(ValidationError):
        world.services.plans.offer(practice.actor("admin"), {"plan_codes": []})
    with pytest.raises(ValidationError):
        world.services.plans.offer(practice.actor("admin"), {"plan_codes": ["DI99"]})


def test_estimates_only_for_offered_plans_and_at_their_minimum(world: World, practice: PracticeFixture) -> None:
    actor = practice.actor("front_desk")
    estimate = world.services.plans.estimate(actor, {"plan_code": "DI12", "amount_cents": 1_200_00})
    assert estimate.monthly_payment_cents == 100_00 and estimate.deferred_interest_if_unpaid_cents == 323_88
    with pytest.raises(NotFound):
        world.services.plans.estimate(actor, {"plan_code": "RA60", "amount_cents": 5_000_00})
    with pytest.raises(ValidationError) as caught:
        world.services.plans.estimate(actor, {"plan_code": "DI6", "amount_cents": 199_99})
    assert "$200" in caught.value.fields["amount_cents"]


# --- activity (the audit log as the admin sees it) -----------------------------------------------


def test_only_the_admin_sees_the_activity_and_only_their_practices(
    world: World, practice: PracticeFixture, other: PracticeFixture
) -> None:
    _approved(world, practice)
    _approved(world, other)
    with pytest.raises(Forbidden):
        world.services.activity.list(practice.actor("manager"), {})
    page = world.services.activity.list(practice.actor("admin"), {})
    assert {e.action for e in page.items} == {"application.submit", "activity.view"}
    assert all(e.object_id != other.practice_id for e in page.items)
    assert world.services.activity.list(practice.actor("admin"), {"outcome": "denied"}).total == 1
    assert audit.verify(world.db).ok
