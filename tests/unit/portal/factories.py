"""Practices, locations and actors for the portal's unit tests (random ids, in-memory SQLite)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import session_factory, transaction
from services.portal.permissions import Actor
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps, new_id
from services.portal.store import practices
from services.portal.store.models import Location
from tests.support.infra import random_id
from tests.unit.portal.conftest import memory_engine
from tests.unit.portal.fakes import FakeClock

TODAY = date(2027, 1, 15)


@dataclass
class PracticeFixture:
    practice_id: str
    locations: list[str]

    def actor(self, *roles: str, sub: str | None = None, name: str = "Test Staff") -> Actor:
        return Actor(
            sub=sub or random_id("sub-"),
            practice_id=self.practice_id,
            roles=roles or ("admin",),
            name=name,
            ip="203.0.113.7",
            request_id=random_id("req-"),
        )


def make_practice(db: sessionmaker[Session], name: str = "Test Dental", locations: int = 2) -> PracticeFixture:
    practice_id = random_id("p-")
    practices.upsert(db, practice_id, name)
    ids = []
    with transaction(db) as session:
        for index in range(locations):
            location_id = new_id("loc")
            ids.append(location_id)
            session.execute(
                insert(Location).values(
                    location_id=location_id,
                    practice_id=practice_id,
                    name=f"Location {index + 1}",
                    street=f"{index + 1} Main St",
                    city="Portland",
                    state="OR",
                    zip="97214",
                    phone="(503) 555-0100",
                )
            )
    return PracticeFixture(practice_id, ids)


def applicant(location_id: str, **overrides: Any) -> dict[str, Any]:
    """A JSON application that the rules approve (income $60,000, $1,200 housing, $3,000 asked)."""
    values: dict[str, Any] = {
        "location_id": location_id,
        "first_name": "Maya",
        "last_name": random_id("Lee-"),
        "date_of_birth": "1988-03-09",
        "street": "12 Oak St",
        "city": "Portland",
        "state": "OR",
        "zip": "97214",
        "email": "maya@example.test",
        "phone": "(503) 555-0199",
        "annual_income_cents": 60_000_00,
        "monthly_housing_cents": 1_200_00,
        "requested_cents": 3_000_00,
        "consent": True,
    }
    values.update(overrides)
    return values


@dataclass
class World:
    db: sessionmaker[Session]
    clock: FakeClock
    services: Services
    rng: random.Random


def make_world() -> World:
    clock = FakeClock(now=1_800_000_000.0)  # 2027-01-15
    db = session_factory(memory_engine())
    return World(db, clock, Services.build(Deps(db, clock)), random.Random(7))
