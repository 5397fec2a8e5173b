"""The portal's service layer: every action a page or the API offers, with its rules.

Each function takes the :class:`~services.portal.permissions.Actor` (practice and
roles from the validated token only), checks the permission first, scopes every
query to the actor's practice, writes the audit entry in the same transaction as
the work, and returns small frozen read models — never ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.portal.service_layer.accounts import AccountService
from services.portal.service_layer.activity import ActivityService
from services.portal.service_layer.applications import ApplicationService
from services.portal.service_layer.money import MoneyService
from services.portal.service_layer.plan_offers import PlanService
from services.portal.service_layer.practice import PracticeService
from services.portal.service_layer.prequalification import PrequalificationService
from services.portal.service_layer.unit import Deps


@dataclass(frozen=True)
class Services:
    practice: PracticeService
    prequalification: PrequalificationService
    applications: ApplicationService
    accounts: AccountService
    plans: PlanService
    activity: ActivityService
    money: MoneyService

    @classmethod
    def build(cls, deps: Deps) -> Services:
        return cls(
            practice=PracticeService(deps),
            prequalification=PrequalificationService(deps),
            applications=ApplicationService(deps),
            accounts=AccountService(deps),
            plans=PlanService(deps),
            activity=ActivityService(deps),
            money=MoneyService(deps),
        )
