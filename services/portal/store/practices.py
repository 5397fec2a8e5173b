"""Practice profiles: written by the admin CLI and the demo seed, read by pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import transaction, utcnow
from services.portal.store.models import Practice


@dataclass(frozen=True)
class PracticeProfile:
    """The read model pages get: no ORM object leaves the store."""

    practice_id: str
    name: str


def upsert(factory: sessionmaker[Session], practice_id: str, name: str) -> None:
    """Create the profile, or rename it if it exists; safe to repeat and to race."""
    with transaction(factory) as session:
        dialect = session.get_bind().dialect.name
        values = {"practice_id": practice_id, "name": name, "created_at": utcnow()}
        if dialect == "postgresql":
            pg = postgresql.insert(Practice).values(values)
            session.execute(
                pg.on_conflict_do_update(index_elements=["practice_id"], set_={"name": pg.excluded.name})
            )
        elif dialect == "sqlite":
            lite = sqlite.insert(Practice).values(values)
            session.execute(
                lite.on_conflict_do_update(index_elements=["practice_id"], set_={"name": lite.excluded.name})
            )
        else:  # pragma: no cover - we run on SQLite and PostgreSQL only
            existing = session.get(Practice, practice_id)
            if existing is None:
                session.add(Practice(**values))
            else:
                existing.name = name


def get(factory: sessionmaker[Session], practice_id: str) -> PracticeProfile | None:
    with factory() as session:
        row = session.execute(
            select(Practice.practice_id, Practice.name).where(Practice.practice_id == practice_id)
        ).one_or_none()
    return PracticeProfile(practice_id=row.practice_id, name=row.name) if row else None
