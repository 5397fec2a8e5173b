"""Resources (browse, search, download) for signed-in staff, and the public status page."""

from __future__ import annotations

import pytest

from tests.integration.portal.test_sign_in_with_auth import Wired
from tests.integration.portal.test_staff_with_auth import signed_in
from tests.support.auth_factory import make_practice, make_user

pytestmark = pytest.mark.integration


def test_resources_browse_search_download(wired: Wired) -> None:
    practice = make_practice(wired.auth, "Cedar Smiles")  # type: ignore[arg-type]
    client = signed_in(wired, make_user(wired.auth, practice, roles=["read_only"]))  # type: ignore[arg-type]
    page = client.get("/resources").get_data(as_text=True)
    assert "Training guides" in page and "Marketing material" in page
    found = client.get("/resources?q=refund").get_data(as_text=True)
    assert "Processing a charge and a refund" in found and "Waiting room poster" not in found
    only = client.get("/resources?category=marketing").get_data(as_text=True)
    assert "Waiting room poster" in only and "Promotional financing explained" not in only

    guide = client.get("/resources/promotional-financing/download")
    assert guide.status_code == 200 and guide.mimetype == "text/html"
    assert 'filename="promotional-financing.html"' in guide.headers["Content-Disposition"]
    assert "Deferred interest" in guide.get_data(as_text=True)
    poster = client.get("/resources/waiting-room-poster/download")
    assert poster.mimetype == "image/svg+xml" and "Cedar Smiles" in poster.get_data(as_text=True)
    assert client.get("/resources/nothing-here/download").status_code == 404


def test_resources_need_sign_in_and_status_does_not(wired: Wired) -> None:
    anonymous = wired.portal_app.test_client()
    assert anonymous.get("/resources").status_code == 302
    status = anonymous.get("/status")
    html = status.get_data(as_text=True)
    assert status.status_code == 200
    assert "Sign-in (auth)" in html and "Email notifications" in html
    data = anonymous.get("/status.json").get_json()
    states = {c["name"]: c["ok"] for c in data["components"]}
    # Auth is up in this fixture; notify is not (its address is never served): degraded.
    assert states["Sign-in (auth)"] is True and states["Provider portal"] is True
    assert states["Email notifications"] is False
    assert data["status"] == "degraded" and data["maintenance"]["on"] is False
