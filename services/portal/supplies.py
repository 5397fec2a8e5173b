"""Ordering printed supplies: store the order, then email fulfilment and the practice through notify.

The order is committed first, with ``notified`` false; then notify is asked for
two emails whose idempotency keys derive from the order id. If notify cannot
take them now, the order stays saved and is sent later: every visit to the order
history retries the practice's unsent orders (a repeat never sends twice, the
keys are the same). The user is told plainly which orders are still waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import transaction
from services.common.notify_client import NotifyClient, NotifyError, NotifyRejected
from services.portal.audit import AuditLog
from services.portal.errors import ValidationError
from services.portal.permissions import Actor, Permission
from services.portal.resources import catalogue
from services.portal.service_layer.unit import Deps, guard, new_id
from services.portal.store.supplies_models import SupplyOrder

QUANTITIES = (25, 50, 100, 250)
MAX_RETRY_PER_VISIT = 10


def printable() -> list:
    return [r for r in catalogue() if r.kind in ("brochure", "poster")]


@dataclass(frozen=True)
class OrderForm:
    quantities: dict[str, int]
    ship_to: str
    contact_email: str


def parse(form: dict) -> OrderForm:
    errors: dict[str, str] = {}
    quantities: dict[str, int] = {}
    for r in printable():
        raw = str(form.get(f"qty_{r.slug}", "") or "0")
        if not raw.isdigit() or (int(raw) and int(raw) not in QUANTITIES):
            errors[f"qty_{r.slug}"] = "must be one of the listed quantities"
        elif int(raw):
            quantities[r.slug] = int(raw)
    if not quantities and not errors:
        errors["items"] = "choose at least one item"
    ship_to = str(form.get("ship_to", "")).strip()
    if not 10 <= len(ship_to) <= 500:
        errors["ship_to"] = "must be a full postal address (10 to 500 characters)"
    email = str(form.get("contact_email", "")).strip()
    if len(email) > 254 or "@" not in email or " " in email or email.startswith("@") or email.endswith("@"):
        errors["contact_email"] = "must be an email address"
    if errors:
        raise ValidationError(errors)
    return OrderForm(quantities, ship_to, email)


def _items_text(quantities: dict[str, int]) -> str:
    titles = {r.slug: r.title for r in catalogue()}
    return "; ".join(f"{n} × {titles[slug]}" for slug, n in quantities.items())


class Supplies:
    def __init__(self, db: sessionmaker[Session], clock, notify: NotifyClient, fulfilment_email: str) -> None:  # type: ignore[no-untyped-def]
        self.deps = Deps(db, clock)
        self.notify = notify
        self.fulfilment_email = fulfilment_email

    def place(self, actor: Actor, form: dict, practice_name: str) -> SupplyOrder:
        guard(self.deps, actor, Permission.ORDER_SUPPLIES, "supplies.order")
        order_form = parse(form)
        with transaction(self.deps.db) as session:
            order = SupplyOrder(
                order_id=new_id("ord"),
                practice_id=actor.practice_id,
                created_by=actor.sub,
                created_by_name=actor.name[:200],
                contact_email=order_form.contact_email,
                ship_to=order_form.ship_to,
                items=_items_text(order_form.quantities),
                created_at=datetime.fromtimestamp(self.deps.clock(), UTC),
                notified=False,
                notify_error="",
            )
            session.add(order)
            AuditLog(self.deps.clock).append(
                session,
                actor,
                "supplies.order",
                object_type="supply_order",
                object_id=order.order_id,
                detail=order.items[:200],
            )
        self._send(order.order_id, practice_name)
        with self.deps.db() as session:
            return session.get(SupplyOrder, order.order_id)  # type: ignore[return-value]

    def history(self, actor: Actor, practice_name: str) -> list[SupplyOrder]:
        """The practice's orders, newest first; unsent ones are retried first."""
        guard(self.deps, actor, Permission.ORDER_SUPPLIES, "supplies.history")
        with self.deps.db() as session:
            unsent = session.scalars(
                select(SupplyOrder.order_id)
                .where(SupplyOrder.practice_id == actor.practice_id, SupplyOrder.notified.is_(False))
                .limit(MAX_RETRY_PER_VISIT)
            ).all()
        for order_id in unsent:
            if not self._send(order_id, practice_name):
                break
        with self.deps.db() as session:
            return list(
                session.scalars(
                    select(SupplyOrder)
                    .where(SupplyOrder.practice_id == actor.practice_id)
                    .order_by(SupplyOrder.created_at.desc())
                    .limit(100)
                )
            )

    def _send(self, order_id: str, practice_name: str) -> bool:
        with self.deps.db() as session:
            order = session.get(SupplyOrder, order_id)
            if order is None or order.notified:
                return True
            contact, items, name = order.contact_email, order.items, order.created_by_name
        error = ""
        try:
            self.notify.send(
                f"{order_id}-fulfilment",
                "supplies_order",
                self.fulfilment_email,
                {"practice_name": practice_name, "order_id": order_id, "items": items},
            )
            self.notify.send(
                f"{order_id}-confirmation",
                "supplies_confirmation",
                contact,
                {"name": name or "there", "order_id": order_id, "items": items},
            )
            sent = True
        except NotifyRejected as exc:  # never accepted as sent: record for an operator, stop retrying
            sent, error = True, f"rejected: {exc}"[:200]
        except NotifyError as exc:
            sent, error = False, f"waiting: {exc.code or 'unavailable'}"[:200]
        with transaction(self.deps.db) as session:
            order = session.get(SupplyOrder, order_id)
            if order is not None:
                order.notified = sent
                order.notify_error = error
        return sent
