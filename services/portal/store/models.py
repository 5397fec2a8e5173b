"""The portal's tables. The skeleton needs only the practice profile; the
business data (patients, accounts, transactions, audit) joins it later, each
row keyed by the same practice id auth puts in the token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class Practice(Base):
    """A practice's profile in the portal; its identity (and sign-in) lives in auth."""

    __tablename__ = "practices"

    practice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
