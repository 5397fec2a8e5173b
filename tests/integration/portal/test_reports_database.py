"""Issue 8's reports on a real, migrated portal database (SQLite, or PostgreSQL in CI): the month
buckets are SQL of each dialect, so every figure is checked again there against independent sums."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

from services import migrate
from services.common import db
from services.portal.service_layer import Services
from services.portal.service_layer.unit import Deps
from services.portal.store.models import Location
from tests.support.infra import Databases
from tests.unit.portal.factories import World, make_practice
from tests.unit.portal.fakes import FakeClock
from tests.unit.portal.report_seed import seed
from tests.unit.portal.test_reports import RANGE, check_all, service

pytestmark = pytest.mark.integration


def test_reports_match_independent_sums_on_a_migrated_database(databases: Databases, tmp_path: Path) -> None:
    url = databases.new("portal")
    migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)})
    engine = db.make_engine(url)
    try:
        factory = db.session_factory(engine)
        clock = FakeClock()
        world = World(factory, clock, Services.build(Deps(factory, clock)), random.Random(3))

        def set_clock(when: datetime) -> None:
            clock.now = when.timestamp()

        seeded = []
        for name, value, days in (("Maple Dental", 11, 16), ("Birch Vision", 23, 8)):
            practice = make_practice(factory, name)
            with factory() as session:
                names = {
                    loc.location_id: loc.name
                    for loc in session.query(Location).filter(Location.practice_id == practice.practice_id)
                }
            seeded.append(seed(world.services, factory, set_clock, practice, names, seed_value=value, days=days))
        for one in seeded:
            check_all(world, one)
        a, b = seeded
        assert service(world).run(a.practice.actor(), "financed-volume", RANGE).totals != service(world).run(
            b.practice.actor(), "financed-volume", RANGE
        ).totals
    finally:
        engine.dispose()
