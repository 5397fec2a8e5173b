"""Support: a ticket per request, a conversation on it, emails through notify.

A practice user opens a ticket (subject, category, message); it is committed
first with ``notified`` false, then notify is asked for the email to the support
inbox (key ``<ticket id>-request``) and, when the sign-in gave the user's email,
a confirmation to the user (key ``<ticket id>-confirmation``). If notify cannot
take them now the ticket stays saved and the emails are retried each time the
ticket list is opened — the same keys, so a repeat never sends twice (the
supplies pattern).

Agents are users of the platform support practice (``PORTAL_SUPPORT_PRACTICE_ID``)
with a role there: they see every ticket, reply and close. Everyone else sees
only their own practice's tickets; another practice's ticket is :class:`NotFound`,
exactly like one that does not exist, and the refusal is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import transaction
from services.common.notify_client import NotifyClient, NotifyError, NotifyRejected
from services.portal.errors import Forbidden, NotFound, ValidationError
from services.portal.permissions import Actor, require_staff
from services.portal.service_layer.unit import Deps, new_id
from services.portal.store.support_models import SupportMessage, SupportTicket

CATEGORIES = (
    ("account", "Account and sign-in"),
    ("payments", "Charges, refunds and deposits"),
    ("applications", "Patient applications"),
    ("technical", "Something is not working"),
    ("supplies", "Resources and supplies"),
    ("other", "Something else"),
)
CATEGORY_LABELS = dict(CATEGORIES)
MAX_SUBJECT = 200
MAX_BODY = 5000
MAX_RETRY_PER_VISIT = 10
MAX_LIST = 200


@dataclass(frozen=True)
class RequestForm:
    subject: str
    category: str
    message: str


def _message_text(form: dict, errors: dict[str, str], name: str = "message") -> str:
    text = str(form.get(name, "")).replace("\r\n", "\n").strip()
    if not text:
        errors[name] = "must not be empty"
    elif len(text) > MAX_BODY:
        errors[name] = f"must be at most {MAX_BODY} characters"
    return text


def parse(form: dict) -> RequestForm:
    errors: dict[str, str] = {}
    subject = " ".join(str(form.get("subject", "")).split())
    if not 3 <= len(subject) <= MAX_SUBJECT:
        errors["subject"] = f"must be 3 to {MAX_SUBJECT} characters"
    category = str(form.get("category", ""))
    if category not in CATEGORY_LABELS:
        errors["category"] = "choose one of the listed categories"
    message = _message_text(form, errors)
    if errors:
        raise ValidationError(errors)
    return RequestForm(subject, category, message)


def parse_reply(form: dict) -> str:
    errors: dict[str, str] = {}
    text = _message_text(form, errors)
    if errors:
        raise ValidationError(errors)
    return text


@dataclass(frozen=True)
class Thread:
    ticket: SupportTicket
    messages: list[SupportMessage]


class Support:
    def __init__(  # type: ignore[no-untyped-def]
        self,
        db: sessionmaker[Session],
        clock,
        notify: NotifyClient,
        support_email: str,
        support_practice_id: str,
    ) -> None:
        self.deps = Deps(db, clock)
        self.notify = notify
        self.support_email = support_email
        self.support_practice_id = support_practice_id

    # --- who -------------------------------------------------------------------------------
    def is_agent(self, actor: Actor) -> bool:
        return actor.is_staff and actor.practice_id == self.support_practice_id

    def _audit(
        self, actor: Actor, action: str, ticket_id: str, outcome: str = "ok", detail: str = ""
    ) -> None:
        if not actor.practice_id:
            return
        with transaction(self.deps.db) as session:
            self.deps.audit.append(
                session,
                actor,
                action,
                object_type="support_ticket",
                object_id=ticket_id,
                outcome=outcome,
                detail=detail,
            )

    def _visible(self, session: Session, actor: Actor, ticket_id: str) -> SupportTicket | None:
        ticket = session.get(SupportTicket, ticket_id[:32])
        if ticket is None:
            return None
        if self.is_agent(actor) or ticket.practice_id == actor.practice_id:
            return ticket
        return None

    # --- tickets ---------------------------------------------------------------------------
    def create(self, actor: Actor, form: dict, contact_email: str) -> SupportTicket:
        require_staff(actor)
        request = parse(form)
        now = self.deps.now()
        with transaction(self.deps.db) as session:
            ticket = SupportTicket(
                ticket_id=new_id("tkt"),
                practice_id=actor.practice_id,
                created_by=actor.sub,
                created_by_name=actor.name[:200],
                contact_email=contact_email[:254],
                category=request.category,
                subject=request.subject,
                status="open",
                created_at=now,
                updated_at=now,
                notified=False,
                notify_error="",
            )
            session.add(ticket)
            session.flush()
            session.add(
                SupportMessage(
                    ticket_id=ticket.ticket_id,
                    author_sub=actor.sub,
                    author_name=actor.name[:200],
                    from_support=self.is_agent(actor),
                    body=request.message,
                    created_at=now,
                )
            )
            self.deps.audit.append(
                session,
                actor,
                "support.create",
                object_type="support_ticket",
                object_id=ticket.ticket_id,
                detail=request.category,
            )
            ticket_id = ticket.ticket_id
        self._send(ticket_id)
        with self.deps.db() as session:
            return session.get(SupportTicket, ticket_id)  # type: ignore[return-value]

    def tickets(self, actor: Actor, status: str = "") -> list[SupportTicket]:
        """Tickets the actor may see (an agent: all), most recently active first; unsent emails
        of those tickets are retried first."""
        require_staff(actor)
        scope = [] if self.is_agent(actor) else [SupportTicket.practice_id == actor.practice_id]
        with self.deps.db() as session:
            unsent = session.scalars(
                select(SupportTicket.ticket_id)
                .where(*scope, SupportTicket.notified.is_(False))
                .limit(MAX_RETRY_PER_VISIT)
            ).all()
        for ticket_id in unsent:
            if not self._send(ticket_id):
                break
        if status in ("open", "closed"):
            scope.append(SupportTicket.status == status)
        with self.deps.db() as session:
            return list(
                session.scalars(
                    select(SupportTicket)
                    .where(*scope)
                    .order_by(SupportTicket.updated_at.desc())
                    .limit(MAX_LIST)
                )
            )

    def thread(self, actor: Actor, ticket_id: str) -> Thread:
        """The ticket and its messages; audited (``not_found`` for a foreign or unknown id)."""
        require_staff(actor)
        with self.deps.db() as session:
            ticket = self._visible(session, actor, ticket_id)
            if ticket is None:
                session.close()
                self._audit(actor, "support.view", ticket_id[:64], "not_found")
                raise NotFound("ticket")
            messages = list(
                session.scalars(
                    select(SupportMessage)
                    .where(SupportMessage.ticket_id == ticket.ticket_id)
                    .order_by(SupportMessage.seq)
                )
            )
            session.expunge_all()
        self._audit(actor, "support.view", ticket.ticket_id)
        return Thread(ticket, messages)

    def messages_after(
        self, actor: Actor, ticket_id: str, after: int
    ) -> tuple[SupportTicket, list[SupportMessage]]:
        """Messages newer than ``after`` (for polling). Not audited when allowed — it runs every
        few seconds while a ticket is open — but a refusal is, like a page view's."""
        require_staff(actor)
        with self.deps.db() as session:
            ticket = self._visible(session, actor, ticket_id)
            if ticket is None:
                session.close()
                self._audit(actor, "support.view", ticket_id[:64], "not_found", "poll")
                raise NotFound("ticket")
            messages = list(
                session.scalars(
                    select(SupportMessage)
                    .where(SupportMessage.ticket_id == ticket.ticket_id, SupportMessage.seq > after)
                    .order_by(SupportMessage.seq)
                    .limit(100)
                )
            )
            session.expunge_all()
        return ticket, messages

    def reply(self, actor: Actor, ticket_id: str, form: dict) -> SupportMessage:
        """Add a message. A practice's reply to a closed ticket opens it again; an agent's reply
        to a closed ticket is refused (reopen by replying as the practice, or open a new one)."""
        require_staff(actor)
        body = parse_reply(form)
        agent = self.is_agent(actor)
        with transaction(self.deps.db) as session:
            ticket = self._visible(session, actor, ticket_id)
            if ticket is None:
                outcome_missing = True
            else:
                outcome_missing = False
                if ticket.status == "closed" and agent:
                    raise ValidationError({"message": "this ticket is closed"})
                now = self.deps.now()
                message = SupportMessage(
                    ticket_id=ticket.ticket_id,
                    author_sub=actor.sub,
                    author_name=actor.name[:200],
                    from_support=agent,
                    body=body,
                    created_at=now,
                )
                session.add(message)
                ticket.status = "open"
                ticket.updated_at = now
                self.deps.audit.append(
                    session,
                    actor,
                    "support.reply",
                    object_type="support_ticket",
                    object_id=ticket.ticket_id,
                    detail="agent" if agent else "practice",
                )
                session.flush()
                session.expunge(message)
        if outcome_missing:
            self._audit(actor, "support.reply", ticket_id[:64], "not_found")
            raise NotFound("ticket")
        return message

    def close(self, actor: Actor, ticket_id: str) -> None:
        require_staff(actor)
        with transaction(self.deps.db) as session:
            ticket = self._visible(session, actor, ticket_id)
            found = ticket is not None
            if ticket is not None and self.is_agent(actor):
                ticket.status = "closed"
                ticket.updated_at = self.deps.now()
                self.deps.audit.append(
                    session, actor, "support.close", object_type="support_ticket", object_id=ticket.ticket_id
                )
        if not found:
            self._audit(actor, "support.close", ticket_id[:64], "not_found")
            raise NotFound("ticket")
        if not self.is_agent(actor):
            self._audit(actor, "support.close", ticket_id[:64], "denied", "not a support agent")
            raise Forbidden("support_agent")

    # --- email -----------------------------------------------------------------------------
    def _send(self, ticket_id: str) -> bool:
        with self.deps.db() as session:
            ticket = session.get(SupportTicket, ticket_id)
            if ticket is None or ticket.notified:
                return True
            first = session.scalar(
                select(SupportMessage.body)
                .where(SupportMessage.ticket_id == ticket_id)
                .order_by(SupportMessage.seq)
                .limit(1)
            )
            subject, name, email = ticket.subject, ticket.created_by_name, ticket.contact_email
        request_params = {
            "ticket_id": ticket_id,
            "subject": subject,
            "body": first or "",
            "from_name": name or "A Provider Center user",
        }
        if email:
            request_params["from_email"] = email
        error = ""
        try:
            self.notify.send(f"{ticket_id}-request", "support_request", self.support_email, request_params)
            if email:
                self.notify.send(
                    f"{ticket_id}-confirmation",
                    "support_confirmation",
                    email,
                    {"name": name or "there", "ticket_id": ticket_id, "subject": subject},
                )
            sent = True
        except NotifyRejected as exc:  # never accepted as sent: record for an operator, stop retrying
            sent, error = True, f"rejected: {exc}"[:200]
        except NotifyError as exc:
            sent, error = False, f"waiting: {exc.code or 'unavailable'}"[:200]
        with transaction(self.deps.db) as session:
            ticket = session.get(SupportTicket, ticket_id)
            if ticket is not None:
                ticket.notified = sent
                ticket.notify_error = error
        return sent
