"""Support tickets through the portal's pages with real auth sign-ins: two practices and the
platform support practice; emails through a real notify gRPC server (keys from the ticket id);
the JSON polling endpoint; tenancy (another practice's ticket is 404, on pages and JSON)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from services.common.db import make_engine, session_factory
from services.common.notify_client import NotifyClient, NotifyUnavailable, SendResult
from services.portal.errors import NotFound
from services.portal.store.models import AuditEntry
from services.portal.support import Support
from services.portal.web.support_views import EXTENSION
from tests.integration.portal.test_sign_in_with_auth import Wired
from tests.integration.portal.test_staff_with_auth import csrf, signed_in
from tests.support.auth_factory import make_practice, make_user
from tests.support.infra import Databases

pytestmark = pytest.mark.integration

SUPPORT_INBOX = "help@support.example.test"


class RealNotify:
    """The notify gRPC server in this process on port 0, over a fresh migrated database."""

    def __init__(self, databases: Databases, tmp_path: Path) -> None:
        from services.notify import bootstrap
        from services.notify.settings import Settings

        self.url = databases.new("notify")
        settings = Settings(database_url=self.url, grpc_addr="127.0.0.1:0", mail_dir=tmp_path / "mail")
        bootstrap.ensure_schema(settings)
        self.engine = make_engine(self.url)
        self.running = bootstrap.build_grpc_server(settings, "127.0.0.1:0")
        self.running.server.start()
        self.address = f"127.0.0.1:{self.running.port}"

    def messages(self) -> list[tuple[str, str, str, str, str]]:
        from services.notify.store.models import Message

        with session_factory(self.engine)() as session:
            rows = session.scalars(select(Message).order_by(Message.created_at)).all()
            return [(m.idempotency_key, m.template, m.recipient, m.subject, m.body_text) for m in rows]

    def stop(self) -> None:
        self.running.stop(grace_s=0.5)
        self.engine.dispose()


@pytest.fixture
def notify(databases: Databases, tmp_path: Path) -> Iterator[RealNotify]:
    server = RealNotify(databases, tmp_path)
    yield server
    server.stop()


class Switchable:
    """A real NotifyClient that can be made to look down."""

    def __init__(self, client: NotifyClient) -> None:
        self.client = client
        self.down = False

    def send(self, key: str, template: str, to: str, params: dict) -> SendResult:
        if self.down:
            raise NotifyUnavailable("down", "UNAVAILABLE")
        return self.client.send(key, template, to, params)


def _wire(wired: Wired, notify: RealNotify) -> tuple[Switchable, str, str, str]:
    auth = wired.auth
    support_practice = make_practice(auth, "Provider Center Support")  # type: ignore[arg-type]
    first = make_practice(auth, "Harbor Dental")  # type: ignore[arg-type]
    second = make_practice(auth, "Far Away Vet")  # type: ignore[arg-type]
    switch = Switchable(NotifyClient(notify.address))
    ctx = wired.ctx
    wired.portal_app.extensions[EXTENSION] = Support(
        ctx.db, ctx.clock, switch, SUPPORT_INBOX, support_practice
    )  # type: ignore[arg-type]
    return switch, support_practice, first, second


def _ticket_id(location: str) -> str:
    match = re.search(r"/support/tickets/(tkt_[0-9a-f]{16})", location)
    assert match, location
    return match.group(1)


def test_ticket_conversation_between_a_practice_and_an_agent(wired: Wired, notify: RealNotify) -> None:
    _switch, support_practice, first, second = _wire(wired, notify)
    auth = wired.auth
    desk_user = make_user(auth, first, roles=["front_desk"])  # type: ignore[arg-type]
    agent_user = make_user(auth, support_practice, roles=["manager"])  # type: ignore[arg-type]
    desk = signed_in(wired, desk_user)
    agent = signed_in(wired, agent_user)
    stranger = signed_in(wired, make_user(auth, second, roles=["admin"]))  # type: ignore[arg-type]

    # Nav link and footer link; the contact page is public.
    home = desk.get("/support").get_data(as_text=True)
    assert 'href="/support"' in home and 'href="/support/contact"' in home
    public = wired.portal_app.test_client().get("/support/contact")
    assert public.status_code == 200
    page = public.get_data(as_text=True)
    assert "1-800-555-0199" in page and "support@providercenter.example" in page

    token = csrf(desk, "/support/new")
    assert desk_user.email in desk.get("/support/new").get_data(as_text=True)
    bad = desk.post("/support/new", data={"csrf_token": token, "subject": "x", "category": "nope"})
    assert bad.status_code == 400 and 'role="alert"' in bad.get_data(as_text=True)
    created = desk.post(
        "/support/new",
        data={
            "csrf_token": token,
            "subject": "Refund did not post",
            "category": "payments",
            "message": "A refund from yesterday is not on the deposit report.\nCan you check?",
        },
    )
    assert created.status_code == 302
    ticket_id = _ticket_id(created.headers["Location"])
    shown = desk.get(created.headers["Location"]).get_data(as_text=True)
    assert "created" in shown and f"confirmation is on its way to {desk_user.email}" in shown

    # Both emails through real notify, keyed by the ticket id.
    sent = {key: (template, to, subject, body) for key, template, to, subject, body in notify.messages()}
    assert set(sent) == {f"{ticket_id}-request", f"{ticket_id}-confirmation"}
    assert sent[f"{ticket_id}-request"][:2] == ("support_request", SUPPORT_INBOX)
    assert (
        ticket_id in sent[f"{ticket_id}-request"][2]
        and "Refund did not post" in sent[f"{ticket_id}-request"][2]
    )
    assert "not on the deposit report" in sent[f"{ticket_id}-request"][3]
    assert desk_user.email in sent[f"{ticket_id}-request"][3]
    assert sent[f"{ticket_id}-confirmation"][:2] == ("support_confirmation", desk_user.email)

    # The agent sees every practice's ticket and replies; the practice sees the reply.
    assert ticket_id in agent.get("/support").get_data(as_text=True)
    agent_token = csrf(agent, f"/support/tickets/{ticket_id}")
    replied = agent.post(
        f"/support/tickets/{ticket_id}/reply",
        data={"csrf_token": agent_token, "message": "Found it: it posts tonight. <b>no html</b>"},
    )
    assert replied.status_code == 302 and "#m-" in replied.headers["Location"]
    thread = desk.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Found it: it posts tonight. &lt;b&gt;no html&lt;/b&gt;" in thread
    assert "(Provider Center support)" in thread
    desk_token = csrf(desk, f"/support/tickets/{ticket_id}")
    assert (
        desk.post(
            f"/support/tickets/{ticket_id}/reply", data={"csrf_token": desk_token, "message": "Thank you!"}
        ).status_code
        == 302
    )
    assert "Thank you!" in agent.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    empty = desk.post(f"/support/tickets/{ticket_id}/reply", data={"csrf_token": desk_token, "message": " "})
    assert empty.status_code == 400

    # Only agents close; the practice's next reply opens the ticket again.
    assert (
        desk.post(f"/support/tickets/{ticket_id}/close", data={"csrf_token": desk_token}).status_code == 403
    )
    assert (
        agent.post(f"/support/tickets/{ticket_id}/close", data={"csrf_token": agent_token}).status_code == 302
    )
    assert ticket_id in desk.get("/support?status=closed").get_data(as_text=True)
    assert ticket_id not in desk.get("/support?status=open").get_data(as_text=True)
    desk.post(
        f"/support/tickets/{ticket_id}/reply", data={"csrf_token": desk_token, "message": "One more thing"}
    )
    assert ticket_id in desk.get("/support?status=open").get_data(as_text=True)

    # Another practice: not listed, 404 on the page, the JSON, replying and closing — audited.
    assert ticket_id not in stranger.get("/support").get_data(as_text=True)
    assert stranger.get(f"/support/tickets/{ticket_id}").status_code == 404
    polled = stranger.get(f"/support/tickets/{ticket_id}/messages.json?after=0")
    assert polled.status_code == 404 and polled.get_json() == {
        "error": "not_found",
        "message": "No such ticket.",
    }
    stranger_token = csrf(stranger, "/support/new")
    for action in ("reply", "close"):
        answer = stranger.post(
            f"/support/tickets/{ticket_id}/{action}", data={"csrf_token": stranger_token, "message": "hi"}
        )
        assert answer.status_code == 404
    assert "One more thing" not in stranger.get("/support").get_data(as_text=True)
    with wired.ctx.db() as session:
        refused = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.object_id == ticket_id,
                AuditEntry.outcome == "not_found",
                AuditEntry.practice_id == second,
            )
        ).all()
        done = session.scalars(
            select(AuditEntry.action).where(AuditEntry.object_id == ticket_id, AuditEntry.outcome == "ok")
        ).all()
    assert sorted(refused) == ["support.close", "support.reply", "support.view", "support.view"]
    assert {"support.create", "support.view", "support.reply", "support.close"} <= set(done)


def test_polling_returns_only_newer_messages(wired: Wired, notify: RealNotify) -> None:
    _switch, support_practice, first, _second = _wire(wired, notify)
    auth = wired.auth
    desk = signed_in(wired, make_user(auth, first, roles=["read_only"]))  # type: ignore[arg-type]
    agent = signed_in(wired, make_user(auth, support_practice, roles=["front_desk"]))  # type: ignore[arg-type]
    colleague = signed_in(wired, make_user(auth, first, roles=["admin"]))  # type: ignore[arg-type]
    token = csrf(desk, "/support/new")
    created = desk.post(
        "/support/new",
        data={"csrf_token": token, "subject": "Cannot print", "category": "technical", "message": "First"},
    )
    ticket_id = _ticket_id(created.headers["Location"])
    url = f"/support/tickets/{ticket_id}/messages.json"
    everything = desk.get(f"{url}?after=0")
    assert everything.status_code == 200 and everything.headers["Cache-Control"] == "no-store"
    data = everything.get_json()
    assert data["status"] == "open" and [m["body"] for m in data["messages"]] == ["First"]
    assert data["messages"][0]["when"].endswith(" UTC")
    last = data["messages"][-1]["seq"]
    assert desk.get(f"{url}?after={last}").get_json()["messages"] == []

    page = desk.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert f'data-after="{last}"' in page and f'data-poll-url="{url}"' in page
    assert '<script src="/static/support.js" defer></script>' in page and "<script>" not in page

    agent_token = csrf(agent, f"/support/tickets/{ticket_id}")
    agent.post(f"/support/tickets/{ticket_id}/reply", data={"csrf_token": agent_token, "message": "Second"})
    agent.post(f"/support/tickets/{ticket_id}/reply", data={"csrf_token": agent_token, "message": "Third"})
    newer = desk.get(f"{url}?after={last}").get_json()["messages"]
    assert [(m["body"], m["from_support"]) for m in newer] == [("Second", True), ("Third", True)]
    assert newer[0]["seq"] > last and newer[1]["seq"] > newer[0]["seq"]
    assert [m["body"] for m in desk.get(f"{url}?after={newer[0]['seq']}").get_json()["messages"]] == ["Third"]
    assert len(desk.get(f"{url}?after=junk").get_json()["messages"]) == 3
    # A colleague in the same practice and the agent see it; a stranger practice does not.
    assert colleague.get(f"{url}?after=0").status_code == 200
    assert agent.get(f"{url}?after=0").status_code == 200
    assert desk.get("/support/tickets/tkt_0000000000000000/messages.json").status_code == 404


def test_ticket_kept_while_notify_is_down_then_sent(wired: Wired, notify: RealNotify) -> None:
    switch, _support, first, _second = _wire(wired, notify)
    switch.down = True
    desk = signed_in(wired, make_user(wired.auth, first, roles=["manager"]))  # type: ignore[arg-type]
    token = csrf(desk, "/support/new")
    created = desk.post(
        "/support/new",
        data={
            "csrf_token": token,
            "subject": "Statement question",
            "category": "account",
            "message": "Hello",
        },
    )
    ticket_id = _ticket_id(created.headers["Location"])
    shown = desk.get(created.headers["Location"]).get_data(as_text=True)
    assert "not reachable right now" in shown and notify.messages() == []
    assert "email waiting to send" in desk.get("/support").get_data(as_text=True)
    switch.down = False
    listing = desk.get("/support").get_data(as_text=True)
    assert "email waiting to send" not in listing
    keys = sorted(key for key, *_ in notify.messages())
    assert keys == [f"{ticket_id}-confirmation", f"{ticket_id}-request"]
    desk.get("/support")  # a later visit sends nothing again
    assert len(notify.messages()) == 2


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict]] = []

    def send(self, key: str, template: str, to: str, params: dict) -> SendResult:
        self.sent.append((key, template, to, dict(params)))
        return SendResult(message_id=key, duplicate=False)


def test_without_an_email_from_sign_in_only_the_support_inbox_is_emailed(wired: Wired) -> None:
    from services.portal.permissions import Actor

    recording = Recording()
    ctx = wired.ctx
    service = Support(ctx.db, ctx.clock, recording, SUPPORT_INBOX, "support-practice")  # type: ignore[arg-type]
    actor = Actor(sub="u-1", practice_id="p-no-email", roles=("front_desk",), name="Dee Desk")
    form = {"subject": "Printer jam", "category": "technical", "message": "Help"}
    ticket = service.create(actor, form, contact_email="")
    assert ticket.notified and ticket.notify_error == ""
    assert [(k, t, to) for k, t, to, _ in recording.sent] == [
        (f"{ticket.ticket_id}-request", "support_request", SUPPORT_INBOX)
    ]
    assert "from_email" not in recording.sent[0][3] and recording.sent[0][3]["from_name"] == "Dee Desk"
    # Another practice's actor cannot read it through the service either.
    other = Actor(sub="u-2", practice_id="p-other", roles=("admin",), name="Oz")
    with pytest.raises(NotFound):
        service.thread(other, ticket.ticket_id)
    with pytest.raises(NotFound):
        service.messages_after(other, ticket.ticket_id, 0)
