"""Migrating each service's database with its own Alembic history."""

from __future__ import annotations

from pathlib import Path

from services.common import db
from services.common.config import Env

SERVICES = ("auth", "notify", "portal")
_ROOT = Path(__file__).parent


def migrations_dir(service: str) -> Path:
    return _ROOT / service / "store" / "migrations"


def upgrade(service: str, env: Env, revision: str = "head") -> None:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    db.upgrade(db.database_url(env, service), migrations_dir(service), revision)
