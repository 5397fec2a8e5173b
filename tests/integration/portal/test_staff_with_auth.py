"""Staff management through the portal against the real auth (HTTP + gRPC UserAdminService).

Auth makes every decision; the portal passes the signed-in admin's own token and
turns the answers into pages. Another practice's user is a 404 whatever the
portal is asked, and every change lands in the portal's audit log too.
"""

from __future__ import annotations

import re

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select

from services.portal.staff import StaffAdmin
from services.portal.store.models import AuditEntry
from services.portal.web.staff_views import EXTENSION as STAFF
from tests.integration.portal.test_sign_in_with_auth import CSRF, PORTAL_URL, Wired, local, sign_in_at_auth
from tests.support.auth_factory import make_practice, make_user
from tests.support.infra import random_id

pytestmark = pytest.mark.integration


def signed_in(wired: Wired, user: object) -> FlaskClient:
    """A fresh portal browser signed in as ``user`` through auth's real pages."""
    client = wired.portal_app.test_client()
    to_login = client.get("/")
    to_auth = client.get(to_login.headers["Location"])
    callback = sign_in_at_auth(requests.Session(), to_auth.headers["Location"], user)
    assert callback.startswith(PORTAL_URL)
    assert client.get(local(callback)).status_code == 302
    return client


def csrf(client: FlaskClient, path: str = "/staff") -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match
    return match.group(1)


def test_staff_management_through_the_portal(wired: Wired) -> None:
    auth = wired.auth
    practice = make_practice(auth, "Maple Hearing")  # type: ignore[arg-type]
    first = make_user(auth, practice, roles=["admin"])  # type: ignore[arg-type]
    second = make_user(auth, practice, roles=["admin"])  # type: ignore[arg-type]
    clerk = make_user(auth, practice, roles=["front_desk"])  # type: ignore[arg-type]
    stranger = make_user(auth, make_practice(auth, "Elsewhere Vet"), roles=["front_desk"])  # type: ignore[arg-type]

    admin = signed_in(wired, first)
    listing = admin.get("/staff").get_data(as_text=True)
    assert clerk.user_id in listing and second.user_id in listing
    assert stranger.user_id not in listing
    assert clerk.user_id in admin.get(f"/staff?q={clerk.user_id}").get_data(as_text=True)

    # Another practice's user: 404, for reading and for every action.
    token = csrf(admin)
    assert admin.get(f"/staff/{stranger.user_id}").status_code == 404
    for action in ("suspend", "unlock", "reset-mfa", "roles"):
        answer = admin.post(
            f"/staff/{stranger.user_id}/{action}", data={"csrf_token": token, "roles": "admin"}
        )
        assert answer.status_code == 404, action
    # Without the CSRF token nothing happens.
    assert admin.post(f"/staff/{clerk.user_id}/suspend").status_code in (400, 403)

    # Invite; the same User ID again is refused on the form with auth's reason.
    new_id = random_id("new.")
    form = {
        "csrf_token": token,
        "user_id": new_id,
        "name": "New Person",
        "email": f"{new_id}@example.test",
        "roles": ["front_desk", "manager"],
    }
    invited = admin.post("/staff/invite", data=form)
    assert invited.status_code == 302 and invited.headers["Location"].startswith(f"/staff/{new_id}")
    page = admin.get(invited.headers["Location"]).get_data(as_text=True)
    assert "Invitation sent" in page and "Invited" in page
    again = admin.post("/staff/invite", data=form)
    assert again.status_code == 409 and 'role="alert"' in again.get_data(as_text=True)
    bad = admin.post("/staff/invite", data={**form, "user_id": random_id("x."), "email": "not-an-email"})
    assert bad.status_code == 400

    # Roles, suspend, reactivate.
    assert (
        admin.post(
            f"/staff/{clerk.user_id}/roles", data={"csrf_token": token, "roles": "manager"}
        ).status_code
        == 302
    )
    assert "Manager" in admin.get(f"/staff/{clerk.user_id}").get_data(as_text=True)
    assert admin.post(f"/staff/{clerk.user_id}/suspend", data={"csrf_token": token}).status_code == 302
    assert "Suspended" in admin.get(f"/staff/{clerk.user_id}").get_data(as_text=True)
    assert admin.post(f"/staff/{clerk.user_id}/reactivate", data={"csrf_token": token}).status_code == 302
    assert admin.post(f"/staff/{clerk.user_id}/unlock", data={"csrf_token": token}).status_code == 302

    # Second-factor reset: two admins, so it waits; the asker cannot approve it, the other admin can.
    pending = admin.post(f"/staff/{clerk.user_id}/reset-mfa", data={"csrf_token": token})
    assert pending.headers["Location"].endswith("done=mfa_pending")
    waiting = admin.get("/staff/mfa-requests").get_data(as_text=True)
    request_id = re.search(r"/staff/mfa-requests/([^/]+)/approve", waiting).group(1)  # type: ignore[union-attr]
    own = admin.post(f"/staff/mfa-requests/{request_id}/approve", data={"csrf_token": token})
    assert own.status_code == 409
    other = signed_in(wired, second)
    approved = other.post(f"/staff/mfa-requests/{request_id}/approve", data={"csrf_token": csrf(other)})
    assert approved.status_code == 302
    assert "Not set up" in other.get(f"/staff/{clerk.user_id}").get_data(as_text=True)
    # The user's security activity, from auth.
    assert "sign_in" in admin.get(f"/staff/{first.user_id}").get_data(as_text=True)

    # Everything is in the portal's audit log as well.
    with wired.ctx.db() as session:
        actions = {
            (e.action, e.object_id, e.outcome)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.practice_id == practice))
        }
    assert ("staff.invite", new_id, "ok") in actions
    assert ("staff.invite", new_id, "rejected") in actions
    assert ("staff.suspend", clerk.user_id, "ok") in actions
    assert ("staff.approve_mfa_reset", clerk.user_id, "ok") in actions

    # Auth out of reach: a clear 503, not a 500.
    real = wired.portal_app.extensions[STAFF]
    wired.portal_app.extensions[STAFF] = StaffAdmin("127.0.0.1:1", timeout_s=0.5)
    try:
        assert admin.get("/staff").status_code == 503
    finally:
        wired.portal_app.extensions[STAFF] = real


def test_staff_pages_refuse_non_admins(wired: Wired) -> None:
    auth = wired.auth
    practice = make_practice(auth, "Quiet Optics")  # type: ignore[arg-type]
    clerk = make_user(auth, practice, roles=["front_desk"])  # type: ignore[arg-type]
    client = signed_in(wired, clerk)
    assert client.get("/staff").status_code == 403
    assert "/staff" not in client.get("/").get_data(as_text=True)
    with wired.ctx.db() as session:
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.practice_id == practice, AuditEntry.outcome == "denied")
        ).all()
    assert [e.action for e in denied] == ["staff.list"]
