"""Alembic entry point for the notify database (see services/common/migrations_env.py)."""

from services.common.migrations_env import run
from services.notify.store.models import Base

run(Base.metadata)
