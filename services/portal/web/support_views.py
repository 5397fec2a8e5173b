"""Support: the contact page (public), support requests and each ticket's conversation.

The ticket page works with a reload; with JavaScript on, ``static/support.js``
polls ``messages.json?after=N`` and appends what is new (no inline script: the CSP
allows only ``script-src 'self'``).
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request, url_for

from services.common.notify_client import NotifyClient
from services.common.web import check_csrf
from services.portal import support
from services.portal.errors import Forbidden, NotFound
from services.portal.store.support_models import SupportMessage
from services.portal.web.actors import page_actor
from services.portal.web.context import portal
from services.portal.web.filters import moment
from services.portal.web.forms import submitted

bp = Blueprint("support", __name__, url_prefix="/support")
EXTENSION = "services.portal.support"
POLL_INTERVAL_S = 5


@bp.record_once
def _service(state) -> None:  # type: ignore[no-untyped-def]
    p = state.app.extensions["services.portal"]
    if EXTENSION not in state.app.extensions:
        s = p.settings
        state.app.extensions[EXTENSION] = support.Support(
            p.db, p.clock, NotifyClient(s.notify_grpc_addr), s.support_email, s.support_practice_id
        )


def service() -> support.Support:
    return cast(support.Support, current_app.extensions[EXTENSION])


def _contact() -> dict:
    s = portal().settings
    return {"phone": s.support_phone, "email": s.support_email, "hours": s.support_hours}


def _user_email() -> str:
    signed_in = g.get("signed_in") or {}
    return str(signed_in.get("email", "") or "")


def _form_context() -> dict:
    return {"categories": support.CATEGORIES, "user_email": _user_email(), **_contact()}


@bp.get("/contact")
def contact() -> str:
    return render_template("support/contact.html", **_contact())


@bp.get("")
def index() -> str:
    actor = page_actor()
    status = request.args.get("status", "")
    tickets = service().tickets(actor, status)
    return render_template(
        "support/index.html",
        tickets=tickets,
        status=status,
        agent=service().is_agent(actor),
        created=request.args.get("created", ""),
        labels=support.CATEGORY_LABELS,
        **_contact(),
    )


@bp.get("/new")
def new() -> str:
    from services.portal.permissions import require_staff

    require_staff(page_actor())
    return render_template("support/new.html", values={}, errors={}, **_form_context())


@bp.post("/new")
def create() -> Response:
    result = submitted(
        lambda: service().create(page_actor(), request.form, _user_email()),
        "support/new.html",
        **_form_context(),
    )
    if isinstance(result, Response):
        return result
    return redirect(url_for("support.ticket", ticket_id=result.ticket_id, created="1"))


def _ticket_page(ticket_id: str, values: dict, errors: dict, status: int = 200) -> Response:
    actor = page_actor()
    thread = service().thread(actor, ticket_id)
    body = render_template(
        "support/ticket.html",
        ticket=thread.ticket,
        messages=thread.messages,
        last_seq=thread.messages[-1].seq if thread.messages else 0,
        agent=service().is_agent(actor),
        created=request.args.get("created") == "1",
        labels=support.CATEGORY_LABELS,
        poll_interval_s=POLL_INTERVAL_S,
        values=values,
        errors=errors,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/tickets/<ticket_id>")
def ticket(ticket_id: str) -> Response:
    return _ticket_page(ticket_id, {}, {})


@bp.post("/tickets/<ticket_id>/reply")
def reply(ticket_id: str) -> Response:
    check_csrf()
    from services.portal.errors import ValidationError

    try:
        message = service().reply(page_actor(), ticket_id, request.form)
    except ValidationError as exc:
        return _ticket_page(ticket_id, dict(request.form), exc.fields, status=400)
    return redirect(url_for("support.ticket", ticket_id=ticket_id, _anchor=f"m-{message.seq}"))


@bp.post("/tickets/<ticket_id>/close")
def close(ticket_id: str) -> Response:
    check_csrf()
    service().close(page_actor(), ticket_id)
    return redirect(url_for("support.ticket", ticket_id=ticket_id))


def _json(http_status: int, **body: object) -> Response:
    response = jsonify(body)
    response.status_code = http_status
    response.headers["Cache-Control"] = "no-store"
    return response


def message_json(m: SupportMessage) -> dict:
    return {
        "seq": m.seq,
        "author": m.author_name or m.author_sub,
        "from_support": m.from_support,
        "body": m.body,
        "at": m.created_at.isoformat(),
        "when": moment(m.created_at),
    }


@bp.get("/tickets/<ticket_id>/messages.json")
def messages_json(ticket_id: str) -> Response:
    """Messages after ``after`` (a message ``seq``), oldest first, and the ticket's status."""
    raw = request.args.get("after", "0")
    after = int(raw) if raw.isdigit() and len(raw) <= 12 else 0
    try:
        ticket, messages = service().messages_after(page_actor(), ticket_id, after)
    except NotFound:
        return _json(404, error="not_found", message="No such ticket.")
    except Forbidden as exc:
        return _json(403, error="forbidden", message=str(exc))
    return _json(
        200, ticket_id=ticket.ticket_id, status=ticket.status, messages=[message_json(m) for m in messages]
    )
