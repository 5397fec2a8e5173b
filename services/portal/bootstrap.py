"""The portal's composition root: the one place that picks concrete adapters.

The web app factory asks here for whatever a caller (a test) did not inject;
the admin CLI and the demo seed come here to write practice profiles.
"""

from __future__ import annotations

from datetime import date

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from services.common import db
from services.common.config import ConfigError, Env
from services.common.redis_conn import connect
from services.common.token_client import GrpcTokenVerifier, TokenVerifier
from services.portal.settings import Settings
from services.portal.store import practices

DEMO_PRACTICES = (
    ("demo-dental", "Sunny Dental Group"),
    ("demo-vet", "Copper Fern Veterinary"),
)


def token_verifier(settings: Settings) -> TokenVerifier:
    # The portal's own client id is the audience auth puts in the tokens it issues to us.
    return GrpcTokenVerifier(settings.auth_grpc_addr, audience=settings.client_id)


def redis_client(settings: Settings) -> redis.Redis:
    return connect(settings.redis_url)


def engine(settings: Settings) -> Engine:
    return db.make_engine(settings.database_url)


def add_practice(env: Env, practice_id: str, name: str) -> None:
    """Create or rename the practice's profile in the portal database (idempotent).

    Called by ``providerctl practice add`` after auth has added the practice to
    its directory. The database must be migrated (``providerctl db upgrade``).
    """
    practice_id = practice_id.strip()
    name = name.strip()
    if not practice_id or len(practice_id) > 64:
        raise ConfigError("practice id must be 1 to 64 characters")
    if not name or len(name) > 200:
        raise ConfigError("practice name must be 1 to 200 characters")
    url = db.database_url(env, "portal")
    eng = db.make_engine(url)
    try:
        practices.upsert(db.session_factory(eng), practice_id, name)
    except (OperationalError, ProgrammingError) as exc:
        # Most often an unmigrated database; say what to do in one line, not a traceback.
        raise ConfigError(
            f"portal database not ready ({type(exc.orig).__name__}); "
            "run `providerctl db upgrade portal` first"
        ) from exc
    finally:
        eng.dispose()


def seed_demo(env: Env, today: date | None = None) -> int:
    """The demo practices of DESIGN.md with their locations, plans, cardholders and applications
    (:mod:`services.portal.demo`); running it again changes nothing. Returns the applications made."""
    from services.portal import demo

    for practice_id, name in DEMO_PRACTICES:
        add_practice(env, practice_id, name)
    eng = db.make_engine(db.database_url(env, "portal"))
    try:
        with db.transaction(db.session_factory(eng)) as session:
            return demo.seed(session, today or db.utcnow().date())
    finally:
        eng.dispose()
