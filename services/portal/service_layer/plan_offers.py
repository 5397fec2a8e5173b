"""Which plans a practice offers, and the payment estimator on them.

The catalogue is :mod:`services.portal.plans`; the arithmetic is
:mod:`services.portal.estimator`. Rules here: changing the offer needs
``manage_promotions`` and at least one plan; an estimate is only for a plan the
practice offers (another plan is :class:`NotFound`) and at or above its minimum
purchase. A practice that never chose offers :data:`plans.DEFAULT_OFFERED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from services.common.db import transaction
from services.portal import estimator, plans
from services.portal.errors import NotFound, ValidationError
from services.portal.permissions import Actor, Permission, require_staff
from services.portal.service_layer import inputs
from services.portal.service_layer.unit import Deps, guard
from services.portal.store.models import PracticePlan
from services.portal.validation import parse


@dataclass(frozen=True)
class PlanView:
    code: str
    name: str
    kind: str
    months: int
    apr: Decimal
    min_purchase_cents: int
    merchant_fee_rate: Decimal
    disclosure: str
    offered: bool


def offered_codes(session: Session, practice_id: str) -> frozenset[str]:
    codes = frozenset(
        session.scalars(select(PracticePlan.plan_code).where(PracticePlan.practice_id == practice_id)).all()
    )
    return codes or plans.DEFAULT_OFFERED


def set_offered(session: Session, practice_id: str, codes: tuple[str, ...], by: str, now: Any) -> None:
    session.execute(delete(PracticePlan).where(PracticePlan.practice_id == practice_id))
    for code in codes:
        session.execute(
            insert(PracticePlan).values(
                practice_id=practice_id, plan_code=code, added_at=now, added_by=by[:64]
            )
        )


class PlanService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def catalogue(self, actor: Actor) -> tuple[PlanView, ...]:
        require_staff(actor)
        with self.deps.db() as session:
            offered = offered_codes(session, actor.practice_id)
        return tuple(
            PlanView(
                p.code,
                p.name,
                p.kind.value,
                p.months,
                p.apr,
                p.min_purchase_cents,
                p.merchant_fee_rate,
                p.disclosure(),
                p.code in offered,
            )
            for p in plans.CATALOGUE
        )

    def offer(self, actor: Actor, data: Any, *, text: bool = False) -> tuple[PlanView, ...]:
        guard(self.deps, actor, Permission.MANAGE_PROMOTIONS, "plans.update", "plans")
        if text:
            # An HTML form sends one value per ticked box.
            values = parse(inputs.OFFERED_PLANS, {"plan_codes": list(data.getlist("plan_codes"))})
        else:
            values = parse(inputs.OFFERED_PLANS, data)
        codes = values["plan_codes"]
        if not codes:
            raise ValidationError({"plan_codes": "offer at least one plan"})
        with transaction(self.deps.db) as session:
            set_offered(session, actor.practice_id, codes, actor.sub, self.deps.now())
            self.deps.audit.append(
                session,
                actor,
                "plans.update",
                object_type="plans",
                detail="offers " + " ".join(sorted(codes)),
            )
        return self.catalogue(actor)

    def estimate(self, actor: Actor, data: Any, *, text: bool = False) -> estimator.Estimate:
        require_staff(actor)
        values = parse(inputs.ESTIMATE, data, text=text)
        plan = plans.BY_CODE[values["plan_code"]]
        with self.deps.db() as session:
            if plan.code not in offered_codes(session, actor.practice_id):
                raise NotFound("plan")
        if values["amount_cents"] < plan.min_purchase_cents:
            minimum = f"${plan.min_purchase_cents // 100:,}"
            raise ValidationError({"amount_cents": f"is below this plan's minimum purchase of {minimum}"})
        return estimator.estimate(plan, values["amount_cents"])
