"""Tables of the supplies orders (issue 8), on the portal's one metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.portal.store.models import ID, Base


class SupplyOrder(Base):
    """An order for printed material. ``notified`` turns true once notify has accepted both emails
    (to the fulfilment address and the confirmation to the practice)."""

    __tablename__ = "supply_orders"
    __table_args__ = (Index("ix_supply_orders_practice_created", "practice_id", "created_at"),)

    order_id: Mapped[str] = mapped_column(ID, primary_key=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254))
    ship_to: Mapped[str] = mapped_column(Text)
    items: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_error: Mapped[str] = mapped_column(String(200), default="")
