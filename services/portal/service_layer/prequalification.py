"""Prequalification: a soft check that tells a patient whether they are likely to be approved.

Decided here: nothing about the patient is stored and nothing changes — no
cardholder, no application, no effect on a later application (the rule is
:func:`services.portal.decisions.prequalify`). Because staff typed a patient's
name and income into the portal, the check itself is audited (who, when, from
where) — without any of the values and without the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.db import transaction
from services.portal import decisions
from services.portal.permissions import Actor, Permission
from services.portal.service_layer import inputs
from services.portal.service_layer.unit import Deps, guard
from services.portal.validation import parse


@dataclass(frozen=True)
class PrequalificationResult:
    first_name: str
    likely: bool
    estimated_limit_cents: int


class PrequalificationService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def check(self, actor: Actor, data: Any, *, text: bool = False) -> PrequalificationResult:
        guard(self.deps, actor, Permission.PREQUALIFICATION, "prequalification.check")
        values = parse(inputs.PREQUALIFICATION, data, text=text)
        result = decisions.prequalify(values["annual_income_cents"])
        with transaction(self.deps.db) as session:
            self.deps.audit.append(session, actor, "prequalification.check", object_type="prequalification")
        return PrequalificationResult(values["first_name"], result.likely, result.estimated_limit_cents)
