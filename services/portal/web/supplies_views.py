"""Order printed supplies, and the practice's order history (order_supplies)."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from services.common.notify_client import NotifyClient
from services.portal import supplies
from services.portal.store import practices
from services.portal.web.actors import page_actor
from services.portal.web.context import portal
from services.portal.web.forms import submitted

bp = Blueprint("supplies", __name__, url_prefix="/supplies")
EXTENSION = "services.portal.supplies"


@bp.record_once
def _service(state) -> None:  # type: ignore[no-untyped-def]
    p = state.app.extensions["services.portal"]
    if EXTENSION not in state.app.extensions:
        notify = NotifyClient(p.settings.notify_grpc_addr)
        state.app.extensions[EXTENSION] = supplies.Supplies(
            p.db, p.clock, notify, p.settings.fulfilment_email
        )


def service() -> supplies.Supplies:
    return cast(supplies.Supplies, current_app.extensions[EXTENSION])


def _practice_name() -> str:
    name = g.user.practice_name
    if not name:
        profile = practices.get(portal().db, g.user.practice_id)
        name = profile.name if profile else g.user.practice_id
    return str(name)


def _context() -> dict:
    return {"items": supplies.printable(), "quantities": supplies.QUANTITIES}


@bp.get("")
def index() -> str:
    orders = service().history(page_actor(), _practice_name())
    return render_template("supplies/index.html", orders=orders, placed=request.args.get("placed", ""))


@bp.get("/order")
def order_form() -> str:
    from services.portal.permissions import Permission, require

    require(page_actor(), Permission.ORDER_SUPPLIES)
    return render_template("supplies/order.html", values={}, errors={}, **_context())


@bp.post("/order")
def place() -> Response:
    result = submitted(
        lambda: service().place(page_actor(), request.form, _practice_name()),
        "supplies/order.html",
        **_context(),
    )
    if isinstance(result, Response):
        return result
    return redirect(url_for("supplies.index", placed=result.order_id))
