"""Credit applications made on a patient's behalf: submit (decided at once), list, view.

The rules of the decision are in :mod:`services.portal.decisions`; here are the
rules of the application itself: the patient's consent is required and recorded
(the statement shown, and when), the location must be one of the practice's,
the date of birth must be a real past date. An approval opens a cardholder
account and links it to the practice; the full account number is returned once,
in the answer to the submission, for the patient to use before the card arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select

from services.common.db import transaction
from services.portal import cards, decisions
from services.portal.errors import NotFound, ValidationError
from services.portal.permissions import Actor, Permission
from services.portal.service_layer import inputs
from services.portal.service_layer.accounts import open_account
from services.portal.service_layer.unit import Deps, Page, count_rows, guard, new_id
from services.portal.store.models import Account, Application, Location
from services.portal.validation import parse

CONSENT_TEXT = (
    "I have read the application terms. I authorize the practice to submit this application on my "
    "behalf and the issuer to obtain my credit report to decide on it and, if it is approved, to "
    "review my account."
)
OLDEST_BIRTH_YEAR = 1900


@dataclass(frozen=True)
class ApplicationSummary:
    application_id: str
    applicant_name: str
    status: str
    requested_cents: int
    credit_limit_cents: int
    location_name: str
    submitted_at: datetime
    submitted_by_name: str


@dataclass(frozen=True)
class ApplicationDetail:
    summary: ApplicationSummary
    location_id: str
    city: str
    state: str
    zip: str
    annual_income_cents: int
    monthly_housing_cents: int
    reasons: tuple[str, ...]
    review_notes: tuple[str, ...]
    consent: bool
    consent_text: str
    consent_at: datetime
    account_id: str | None
    masked_account_number: str | None


@dataclass(frozen=True)
class SubmissionResult:
    detail: ApplicationDetail
    # The whole number, formatted, only in this answer and only when approved.
    account_number: str | None


def _summary(app: Application, location_name: str) -> ApplicationSummary:
    return ApplicationSummary(
        application_id=app.application_id,
        applicant_name=f"{app.first_name} {app.last_name}",
        status=app.status,
        requested_cents=app.requested_cents,
        credit_limit_cents=app.credit_limit_cents,
        location_name=location_name,
        submitted_at=app.submitted_at,
        submitted_by_name=app.submitted_by_name,
    )


def _detail(app: Application, location_name: str, number: str | None) -> ApplicationDetail:
    return ApplicationDetail(
        summary=_summary(app, location_name),
        location_id=app.location_id,
        city=app.city,
        state=app.state,
        zip=app.zip,
        annual_income_cents=app.annual_income_cents,
        monthly_housing_cents=app.monthly_housing_cents,
        reasons=tuple(line for line in app.reasons.splitlines() if line),
        review_notes=tuple(line for line in app.review_notes.splitlines() if line),
        consent=app.consent,
        consent_text=app.consent_text,
        consent_at=app.consent_at,
        account_id=app.account_id,
        masked_account_number=cards.masked(number) if number else None,
    )


class ApplicationService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def submit(self, actor: Actor, data: Any, *, text: bool = False) -> SubmissionResult:
        guard(self.deps, actor, Permission.APPLY, "application.submit", "application")
        values = parse(inputs.APPLICATION, data, text=text)
        today = self.deps.today()
        errors: dict[str, str] = {}
        if not values["consent"]:
            errors["consent"] = "the patient's consent is required before applying"
        born: date = values["date_of_birth"]
        if born >= today or born.year < OLDEST_BIRTH_YEAR:
            errors["date_of_birth"] = "must be a date in the past"
        if errors:
            raise ValidationError(errors)
        now = self.deps.now()
        facts = decisions.Facts(
            date_of_birth=born,
            annual_income_cents=values["annual_income_cents"],
            monthly_housing_cents=values["monthly_housing_cents"],
            requested_cents=values["requested_cents"],
            consent=values["consent"],
        )
        decision = decisions.decide(facts, today)
        with transaction(self.deps.db) as session:
            location_name = session.scalar(
                select(Location.name).where(
                    Location.location_id == values["location_id"], Location.practice_id == actor.practice_id
                )
            )
            if location_name is None:
                raise ValidationError({"location_id": "is not one of this practice's locations"})
            holder = {
                name: values[name]
                for name in (
                    "first_name",
                    "last_name",
                    "date_of_birth",
                    "street",
                    "city",
                    "state",
                    "zip",
                    "email",
                    "phone",
                )
            }
            account_id = number = None
            if decision.outcome is decisions.Outcome.APPROVED:
                account_id, number = open_account(
                    session,
                    holder=holder,
                    credit_limit_cents=decision.credit_limit_cents,
                    practice_id=actor.practice_id,
                    opened_by=actor.sub,
                    now=now,
                )
            application_id = new_id("app")
            session.execute(
                insert(Application).values(
                    application_id=application_id,
                    practice_id=actor.practice_id,
                    location_id=values["location_id"],
                    annual_income_cents=values["annual_income_cents"],
                    monthly_housing_cents=values["monthly_housing_cents"],
                    requested_cents=values["requested_cents"],
                    consent=True,
                    consent_text=CONSENT_TEXT,
                    consent_at=now,
                    status=decision.outcome.value,
                    credit_limit_cents=decision.credit_limit_cents,
                    reasons="\n".join(reason.value for reason in decision.reasons),
                    review_notes="\n".join(decision.review_notes),
                    account_id=account_id,
                    submitted_by=actor.sub[:64],
                    submitted_by_name=actor.name[:200],
                    submitted_at=now,
                    **holder,
                )
            )
            self.deps.audit.append(
                session,
                actor,
                "application.submit",
                object_type="application",
                object_id=application_id,
                detail=f"decision {decision.outcome.value}",
            )
            app = session.get(Application, application_id)
            assert app is not None
            detail = _detail(app, location_name, number)
        return SubmissionResult(detail, cards.formatted(number) if number else None)

    def list(self, actor: Actor, query: Any, *, text: bool = False) -> Page[ApplicationSummary]:
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "application.list", "application")
        values = parse(inputs.APPLICATION_LIST, query, text=text)
        statement = (
            select(Application, Location.name)
            .join(Location, Location.location_id == Application.location_id)
            .where(Application.practice_id == actor.practice_id)
        )
        if values["status"]:
            statement = statement.where(Application.status == values["status"])
        if values["location_id"]:
            statement = statement.where(Application.location_id == values["location_id"])
        if values["q"]:
            term = values["q"].lower()
            statement = statement.where(
                func.lower(Application.first_name + " " + Application.last_name).contains(
                    term, autoescape=True
                )
                | func.lower(Application.last_name).contains(term, autoescape=True)
            )
        page, per_page = values["page"], values["per_page"]
        with transaction(self.deps.db) as session:
            total, at_least = count_rows(session, statement, page, per_page)
            rows = session.execute(
                statement.order_by(Application.submitted_at.desc(), Application.application_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
            items = [_summary(app, location_name) for app, location_name in rows]
            self.deps.audit.append(
                session,
                actor,
                "application.list",
                object_type="application",
                detail=f"page {page}, {len(items)} of {total} shown",
            )
        return Page(items, page, per_page, total, at_least)

    def get(self, actor: Actor, application_id: str) -> ApplicationDetail:
        guard(self.deps, actor, Permission.ACCOUNT_LOOKUP, "application.view", "application", application_id)
        with transaction(self.deps.db) as session:
            row = session.execute(
                select(Application, Location.name, Account.number)
                .join(Location, Location.location_id == Application.location_id)
                .outerjoin(Account, Account.account_id == Application.account_id)
                .where(
                    Application.application_id == application_id, Application.practice_id == actor.practice_id
                )
            ).one_or_none()
            self.deps.audit.append(
                session,
                actor,
                "application.view",
                object_type="application",
                object_id=application_id,
                outcome="ok" if row else "not_found",
            )
        if row is None:
            raise NotFound("application")
        app, location_name, number = row
        return _detail(app, location_name, number)
