"""The server-rendered pages: forms with CSRF that work without JavaScript, errors shown by
field, permissions by role, numbers masked, and the nav."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from services.portal.store.models import AuditEntry
from tests.unit.portal.conftest import CSRF, Harness
from tests.unit.portal.factories import PracticeFixture, applicant, make_practice


@pytest.fixture
def practice(harness: Harness) -> PracticeFixture:
    return make_practice(harness.portal.db, "Maple Dental")


def form(values: dict, csrf: str) -> dict[str, str]:
    data = {key: str(value) for key, value in values.items() if key != "consent"}
    for key in ("annual_income_cents", "monthly_housing_cents", "requested_cents"):
        data[key] = f"{values[key] / 100:,.2f}"  # typed in dollars, with a thousands separator
    if values.get("consent"):
        data["consent"] = "yes"
    data["csrf_token"] = csrf
    return data


def test_nav_follows_the_role(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("admin",))
    admin = harness.client.get("/").get_data(as_text=True)
    for label in ("Accounts", "Applications", "Prequalify", "Apply", "Plans &amp; estimator", "Activity"):
        assert f">{label}</a>" in admin, label
    harness.sign_in(practice_id=practice.practice_id, roles=("read_only",), token="at-ro")
    read_only = harness.client.get("/").get_data(as_text=True)
    assert ">Accounts</a>" in read_only and ">Apply</a>" not in read_only and ">Activity</a>" not in read_only
    assert "Location 1" in read_only  # the dashboard lists the practice's locations


def test_apply_page_approves_and_shows_the_number_once(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",), name="Fran Desk")
    page = harness.client.get("/applications/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name in ("first_name", "date_of_birth", "annual_income_cents", "consent", "location_id", "state"):
        assert f'for="{name}"' in html and f'id="{name}"' in html, name
    csrf = CSRF.search(html).group(1)  # type: ignore[union-attr]
    result = harness.client.post("/applications/new", data=form(applicant(practice.locations[0]), csrf))
    html = result.get_data(as_text=True)
    assert result.status_code == 200
    assert "Decision: Approved" in html and "$12,000.00" in html
    number = re.search(r'class="account-number">([0-9 ]{19})<', html).group(1).replace(" ", "")  # type: ignore[union-attr]
    account_link = re.search(r'href="/accounts/(acc_[0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
    account_page = harness.client.get(f"/accounts/{account_link}").get_data(as_text=True)
    assert f"•••• {number[-4:]}" in account_page
    assert number not in account_page and number[:12] not in account_page
    assert "$12,000.00" in account_page and "26.99%" in account_page


def test_a_form_with_mistakes_comes_back_with_each_field_explained(
    harness: Harness, practice: PracticeFixture
) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",))
    csrf = harness.csrf_from("/applications/new")
    values = form(applicant(practice.locations[0], zip="12", consent=False), csrf)
    values["annual_income_cents"] = "lots"
    response = harness.client.post("/applications/new", data=values)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'role="alert"' in html
    for field in ("zip", "annual_income_cents"):
        assert f'href="#{field}"' in html and f'id="{field}-error"' in html
    assert 'aria-invalid="true"' in html
    assert 'value="Maya"' in html  # what was typed is kept


def test_without_consent_the_application_is_not_sent(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",))
    csrf = harness.csrf_from("/applications/new")
    response = harness.client.post(
        "/applications/new", data=form(applicant(practice.locations[0], consent=False), csrf)
    )
    assert response.status_code == 400
    assert "consent is required" in response.get_data(as_text=True)


def test_forms_need_the_csrf_token(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("admin",))
    for path in ("/applications/new", "/prequalify", "/accounts/lookup", "/plans/offered"):
        response = harness.client.post(path, data={"csrf_token": "forged"})
        assert response.status_code == 400, path
        assert "This form has expired" in response.get_data(as_text=True)


def test_prequalify_page_keeps_nothing(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",))
    csrf = harness.csrf_from("/prequalify")
    data = {
        "first_name": "Ana",
        "last_name": "Reyes",
        "street": "1 Elm St",
        "city": "Portland",
        "state": "OR",
        "zip": "97214",
        "annual_income_cents": "52,000",
        "csrf_token": csrf,
    }
    html = harness.client.post("/prequalify", data=data).get_data(as_text=True)
    assert "Ana is likely to be approved" in html and "$10,400.00" in html
    assert "Reyes" not in html  # the form comes back empty


def test_lookup_page_goes_to_the_account_or_says_no_match(
    harness: Harness, practice: PracticeFixture
) -> None:
    other = make_practice(harness.portal.db, "Elsewhere")
    from services.portal.permissions import Actor

    result = harness.portal.services.applications.submit(
        Actor("x", other.practice_id, ("admin",)), applicant(other.locations[0], last_name="Okafor")
    )
    number = (result.account_number or "").replace(" ", "")
    harness.sign_in(practice_id=practice.practice_id, roles=("front_desk",))
    csrf = harness.csrf_from("/accounts/lookup")
    miss = harness.client.post(
        "/accounts/lookup", data={"account_number": number, "zip": "10001", "csrf_token": csrf}
    )
    assert miss.status_code == 200 and "No account matches" in miss.get_data(as_text=True)
    hit = harness.client.post(
        "/accounts/lookup", data={"account_number": number, "zip": "97214", "csrf_token": csrf}
    )
    assert hit.status_code == 303 and hit.headers["Location"] == f"/accounts/{result.detail.account_id}"
    assert "Okafor" in harness.client.get("/accounts").get_data(as_text=True)


def test_forbidden_and_missing_pages_are_clear(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("read_only",))
    forbidden = harness.client.get("/applications/new")
    assert forbidden.status_code == 403
    assert "Your role does not include the apply permission." in forbidden.get_data(as_text=True)
    assert harness.client.get("/activity").status_code == 403
    missing = harness.client.get("/accounts/acc_0000000000000000")
    assert missing.status_code == 404 and "No such account at this practice." in missing.get_data(
        as_text=True
    )
    with harness.portal.db() as session:
        outcomes = [e.outcome for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert outcomes == ["denied", "not_found"]  # the apply form is not patient data; activity is


def test_plans_page_estimates_and_lets_a_manager_choose(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("manager",))
    html = harness.client.get("/plans?plan_code=DI12&amount_cents=1,200").get_data(as_text=True)
    assert "$100.00" in html and "$323.88" in html
    csrf = CSRF.search(html).group(1)  # type: ignore[union-attr]
    saved = harness.client.post("/plans/offered", data={"csrf_token": csrf, "plan_codes": ["RA36", "STD"]})
    assert saved.status_code == 303
    html = harness.client.get("/plans?plan_code=RA36&amount_cents=5000").get_data(as_text=True)
    assert "at 15.90% APR" in html and "were saved" not in html
    too_small = harness.client.get("/plans?plan_code=RA36&amount_cents=10")
    assert too_small.status_code == 400 and "minimum purchase of $1,000" in too_small.get_data(as_text=True)


def test_activity_page_lists_who_saw_what(harness: Harness, practice: PracticeFixture) -> None:
    harness.sign_in(practice_id=practice.practice_id, roles=("admin",), name="Dana Admin")
    harness.client.get("/accounts")
    html = harness.client.get("/activity?action=account.list").get_data(as_text=True)
    assert "account.list" in html and "Dana Admin" in html and "127.0.0.1" in html


def test_lists_paginate_with_links_that_keep_the_filters(harness: Harness, practice: PracticeFixture) -> None:
    from services.portal.permissions import Actor

    actor = Actor("x", practice.practice_id, ("admin",))
    for index in range(3):
        harness.portal.services.applications.submit(
            actor, applicant(practice.locations[0], last_name=f"Page{index}")
        )
    harness.sign_in(practice_id=practice.practice_id, roles=("admin",))
    html = harness.client.get("/applications?q=page&per_page=2").get_data(as_text=True)
    assert "Page 1 of 2" in html
    assert 'href="/applications?q=page&amp;per_page=2&amp;page=2"' in html
    bad = harness.client.get("/applications?page=0")
    assert bad.status_code == 200 and "Please check what was entered" in bad.get_data(as_text=True)


def test_a_list_longer_than_the_count_says_at_least(
    harness: Harness, practice: PracticeFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.portal.permissions import Actor
    from services.portal.service_layer import unit

    monkeypatch.setattr(unit, "COUNT_CAP", 2)
    actor = Actor("x", practice.practice_id, ("admin",))
    for index in range(4):
        harness.portal.services.applications.submit(
            actor, applicant(practice.locations[0], last_name=f"Many{index}")
        )
    harness.sign_in(practice_id=practice.practice_id, roles=("admin",))
    html = harness.client.get("/applications?q=many&per_page=1").get_data(as_text=True)
    assert "Showing 1–1 of 2+" in html and "Page 1 of 2+" in html
    assert 'href="/applications?q=many&amp;per_page=1&amp;page=2"' in html
    last = harness.client.get("/applications?q=many&per_page=1&page=4").get_data(as_text=True)
    assert "Showing 4–4 of 4<" in last and "Page 4 of 4<" in last and 'rel="next"' not in last
