"""Ordering supplies: the order is stored first, then emailed through notify; if notify is down
the order waits and is sent on the next visit to the history, with the same idempotency keys."""

from __future__ import annotations

import pytest

from services.common.notify_client import NotifyUnavailable, SendResult
from services.portal.supplies import Supplies
from services.portal.web.supplies_views import EXTENSION
from tests.integration.portal.test_sign_in_with_auth import Wired
from tests.integration.portal.test_staff_with_auth import csrf, signed_in
from tests.support.auth_factory import make_practice, make_user

pytestmark = pytest.mark.integration


class FlakyNotify:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[tuple[str, str, str, dict]] = []

    def send(self, key: str, template: str, to: str, params: dict) -> SendResult:
        if self.down:
            raise NotifyUnavailable("down", "UNAVAILABLE")
        self.sent.append((key, template, to, dict(params)))
        return SendResult(message_id=key, duplicate=False)


def test_order_kept_while_notify_is_down_then_sent(wired: Wired) -> None:
    notify = FlakyNotify()
    ctx = wired.ctx
    wired.portal_app.extensions[EXTENSION] = Supplies(ctx.db, ctx.clock, notify, "fulfil@example.test")  # type: ignore[arg-type]
    practice = make_practice(wired.auth, "Harbor Dental")  # type: ignore[arg-type]
    from services.portal.bootstrap import add_practice

    add_practice({"PORTAL_DATABASE_URL": ctx.settings.database_url}, practice, "Harbor Dental")
    client = signed_in(wired, make_user(wired.auth, practice, roles=["front_desk"]))  # type: ignore[arg-type]
    token = csrf(client, "/supplies/order")

    bad = client.post("/supplies/order", data={"csrf_token": token, "ship_to": "x", "contact_email": "nope"})
    assert bad.status_code == 400 and 'role="alert"' in bad.get_data(as_text=True)

    form = {
        "csrf_token": token,
        "qty_waiting-room-poster": "25",
        "qty_in-office-brochure": "100",
        "ship_to": "Harbor Dental, 1 Quay Street, Portland ME 04101",
        "contact_email": "desk@example.test",
    }
    placed = client.post("/supplies/order", data=form)
    assert placed.status_code == 302
    page = client.get(placed.headers["Location"]).get_data(as_text=True)
    assert "is saved" in page and "Waiting to send" in page and notify.sent == []

    notify.down = False
    page = client.get("/supplies").get_data(as_text=True)
    assert "Sent" in page and "Waiting to send" not in page
    order_id = placed.headers["Location"].split("placed=")[1]
    assert [(k, t, to) for k, t, to, _ in notify.sent] == [
        (f"{order_id}-fulfilment", "supplies_order", "fulfil@example.test"),
        (f"{order_id}-confirmation", "supplies_confirmation", "desk@example.test"),
    ]
    assert notify.sent[0][3]["practice_name"] == "Harbor Dental"
    assert "100 × In-office brochure" in notify.sent[0][3]["items"]
    # Another practice never sees the order; read-only staff cannot order.
    other = make_practice(wired.auth, "Far Away")  # type: ignore[arg-type]
    viewer = signed_in(wired, make_user(wired.auth, other, roles=["front_desk"]))  # type: ignore[arg-type]
    assert order_id not in viewer.get("/supplies").get_data(as_text=True)
    reader = signed_in(wired, make_user(wired.auth, practice, roles=["read_only"]))  # type: ignore[arg-type]
    assert reader.get("/supplies").status_code == 403
