"""The practice's audit log as its administrator sees it (``user_activity``): newest first, filtered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from services.common.db import transaction
from services.portal.permissions import Actor, Permission
from services.portal.service_layer import inputs
from services.portal.service_layer.unit import Deps, Page, count_rows, guard
from services.portal.store.models import AuditEntry
from services.portal.validation import parse


@dataclass(frozen=True)
class ActivityEntry:
    seq: int
    at: datetime
    actor_sub: str
    actor_name: str
    actor_roles: str
    channel: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    ip: str
    request_id: str
    detail: str


class ActivityService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def list(self, actor: Actor, query: Any, *, text: bool = False) -> Page[ActivityEntry]:
        guard(self.deps, actor, Permission.USER_ACTIVITY, "activity.view", "audit")
        values = parse(inputs.ACTIVITY_LIST, query, text=text)
        statement = select(AuditEntry).where(AuditEntry.practice_id == actor.practice_id)
        for name, column in (
            ("action", AuditEntry.action),
            ("outcome", AuditEntry.outcome),
            ("actor", AuditEntry.actor_sub),
        ):
            if values[name]:
                statement = statement.where(column == values[name])
        page, per_page = values["page"], values["per_page"]
        with transaction(self.deps.db) as session:
            # Reading the log is itself written to it, first, so the page shows its own entry.
            self.deps.audit.append(
                session, actor, "activity.view", object_type="audit", detail=f"page {page}"
            )
            total, at_least = count_rows(session, statement, page, per_page)
            rows = session.scalars(
                statement.order_by(AuditEntry.seq.desc()).limit(per_page).offset((page - 1) * per_page)
            ).all()
            items = [
                ActivityEntry(
                    r.seq,
                    r.at,
                    r.actor_sub,
                    r.actor_name,
                    r.actor_roles,
                    r.channel,
                    r.action,
                    r.object_type,
                    r.object_id,
                    r.outcome,
                    r.ip,
                    r.request_id,
                    r.detail,
                )
                for r in rows
            ]
        return Page(items, page, per_page, total, at_least)
