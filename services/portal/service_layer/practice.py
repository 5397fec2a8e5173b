"""The practice itself: its profile, its locations and the dashboard's figures (no patient data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from services.portal.permissions import Actor, require_staff
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Application, Location, Practice, PracticeAccountCount


@dataclass(frozen=True)
class LocationView:
    location_id: str
    name: str
    street: str
    city: str
    state: str
    zip: str
    phone: str


@dataclass(frozen=True)
class Summary:
    practice_name: str
    locations: tuple[LocationView, ...]
    accounts: int
    applications_30_days: dict[str, int]


def location_views(session, practice_id: str) -> tuple[LocationView, ...]:  # type: ignore[no-untyped-def]
    rows = session.scalars(
        select(Location).where(Location.practice_id == practice_id).order_by(Location.name)
    ).all()
    return tuple(LocationView(r.location_id, r.name, r.street, r.city, r.state, r.zip, r.phone) for r in rows)


class PracticeService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def locations(self, actor: Actor) -> tuple[LocationView, ...]:
        require_staff(actor)
        with self.deps.db() as session:
            return location_views(session, actor.practice_id)

    def summary(self, actor: Actor) -> Summary:
        """Counts only: the dashboard shows no patient data, so it writes no audit entry."""
        require_staff(actor)
        since = self.deps.now() - timedelta(days=30)
        with self.deps.db() as session:
            name = session.scalar(select(Practice.name).where(Practice.practice_id == actor.practice_id))
            # Kept by the database as links are made (PracticeAccountCount), not counted here.
            accounts = session.scalar(
                select(PracticeAccountCount.accounts).where(
                    PracticeAccountCount.practice_id == actor.practice_id
                )
            )
            by_status = session.execute(
                select(Application.status, func.count())
                .where(Application.practice_id == actor.practice_id, Application.submitted_at >= since)
                .group_by(Application.status)
            ).all()
            return Summary(
                practice_name=name or actor.practice_id,
                locations=location_views(session, actor.practice_id),
                accounts=int(accounts or 0),
                applications_30_days={status: int(n) for status, n in by_status},
            )
