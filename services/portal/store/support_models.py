"""Tables of support tickets and their conversation (issue 8), on the portal's one metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.portal.store.models import ID, Base


class SupportTicket(Base):
    """A practice's support request. ``notified`` turns true once notify has accepted the email to
    the support inbox and (when the requester's email is known) the confirmation to the requester.

    ``practice_id`` is the requester's practice (from the token); it carries no foreign key so a
    practice that has no profile row yet can still ask for help."""

    __tablename__ = "support_tickets"
    __table_args__ = (
        Index("ix_support_tickets_practice_updated", "practice_id", "updated_at"),
        Index("ix_support_tickets_status_updated", "status", "updated_at"),
    )

    ticket_id: Mapped[str] = mapped_column(ID, primary_key=True)
    practice_id: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254))  # "" when sign-in gave no email
    category: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))  # open | closed
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_error: Mapped[str] = mapped_column(String(200), default="")


class SupportMessage(Base):
    """One message of a ticket's conversation; ``seq`` increases, so ``after=N`` polls are cheap."""

    __tablename__ = "support_messages"
    __table_args__ = (Index("ix_support_messages_ticket_seq", "ticket_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("support_tickets.ticket_id"))
    author_sub: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(200))
    from_support: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
