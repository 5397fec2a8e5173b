"""The portal's pages and sign-in rules, on fakes (no Redis, no auth, no network)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.base_client import OAuthError

from services.common.maintenance import Maintenance
from services.portal.tokens import SessionTokens
from tests.unit.portal.conftest import ISSUER, PORTAL_URL, Harness, build_harness, make_settings

TEMPLATES = Path(__file__).parents[3] / "services" / "portal" / "web" / "templates"


def _query(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def _to_login(response) -> dict[str, str]:
    """The query of a redirect to the portal's /login (asserting that is where it goes)."""
    assert response.status_code == 302
    location = response.headers["Location"]
    assert urlsplit(location).path == "/login", location
    return _query(location)


def _state_data(harness: Harness, state: str) -> dict:
    with harness.client.session_transaction() as session:
        return session[f"_state_auth_{state}"]["data"]


# --- signing in ---------------------------------------------------------------------------------


def test_a_page_without_a_session_goes_to_login_and_on_to_auth_with_pkce(harness: Harness) -> None:
    first = harness.client.get("/")
    assert _to_login(first) == {"next": "/"}

    second = harness.client.get(first.headers["Location"])
    assert second.status_code == 302
    location = second.headers["Location"]
    assert location.startswith(f"{ISSUER}/authorize?")
    query = _query(location)
    assert query["response_type"] == "code"
    assert query["client_id"] == "portal"
    assert query["redirect_uri"] == f"{PORTAL_URL}/auth/callback"
    assert query["scope"] == "openid profile email"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
    assert "prompt" not in query

    stored = _state_data(harness, query["state"])
    assert stored["nonce"] == query["nonce"]
    assert stored["next"] == "/"
    digest = hashlib.sha256(stored["code_verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_page_first_asked_for_is_remembered(harness: Harness) -> None:
    first = harness.client.get("/?tab=recent")
    assert _to_login(first) == {"next": "/?tab=recent"}
    query = _query(harness.client.get(first.headers["Location"]).headers["Location"])
    assert _state_data(harness, query["state"])["next"] == "/?tab=recent"


@pytest.mark.parametrize(
    "next_value",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "evil", "javascript:alert(1)", "/a\r\nb"],
)
def test_login_remembers_only_local_paths(harness: Harness, next_value: str) -> None:
    response = harness.client.get("/login", query_string={"next": next_value})
    query = _query(response.headers["Location"])
    assert _state_data(harness, query["state"])["next"] == "/"


def test_a_timed_out_session_forces_a_fresh_sign_in_at_auth(harness: Harness) -> None:
    harness.sign_in()
    assert harness.client.get("/").status_code == 200
    harness.clock.advance(901)  # idle time-out is 900 s

    response = harness.client.get("/")
    assert _to_login(response) == {"next": "/", "reauth": "1"}
    to_auth = harness.client.get(response.headers["Location"])
    assert _query(to_auth.headers["Location"])["prompt"] == "login"


def test_the_absolute_time_out_ends_even_a_busy_session(harness: Harness) -> None:
    harness.sign_in(ttl_s=10**6)
    for _ in range(49):  # 49 × 890 s > 12 h, never idle for 15 minutes
        harness.clock.advance(890)
        response = harness.client.get("/")
        if response.status_code == 302:
            break
    assert response.status_code == 302
    assert _query(response.headers["Location"])["reauth"] == "1"


def test_pending_sign_ins_per_browser_are_bounded(harness: Harness) -> None:
    for _ in range(10):
        harness.client.get("/login")
    with harness.client.session_transaction() as session:
        assert len([key for key in session if key.startswith("_state_auth_")]) == 4


def test_a_signed_in_visit_to_login_goes_straight_to_next(harness: Harness) -> None:
    harness.sign_in()
    response = harness.client.get("/login?next=/somewhere")
    assert response.headers["Location"] == "/somewhere"


def test_auth_discovery_for_another_issuer_is_refused(harness: Harness) -> None:
    harness.portal.oidc.server_metadata["issuer"] = "http://impostor.test"
    response = harness.client.get("/login")
    assert response.status_code == 503


# --- the callback -------------------------------------------------------------------------------


def _start_login(harness: Harness, next_path: str = "/") -> str:
    response = harness.client.get("/login", query_string={"next": next_path})
    return _query(response.headers["Location"])["state"]


def _token_response(access: str = "at-new", sub: str = "user-1") -> dict:
    return {
        "access_token": access,
        "id_token": "idt-new",
        "refresh_token": "rt-new",
        "token_type": "Bearer",
        "expires_in": 300,
        "userinfo": {"sub": sub, "name": "Dana Admin"},
    }


def test_callback_starts_a_new_session_and_returns_to_the_page_asked_for(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _start_login(harness, "/?tab=recent")
    before = harness.cookie()
    harness.verifier.issue("at-new", sub="user-1", exp=int(harness.clock()) + 300, name="Dana Admin")
    monkeypatch.setattr(harness.portal.oidc, "authorize_access_token", lambda: _token_response())

    response = harness.client.get(f"/auth/callback?code=c-1&state={state}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/?tab=recent"
    assert harness.cookie() and harness.cookie() != before  # session id rotated
    assert not harness.redis.keys_with(hashlib.sha256(before.encode()).hexdigest())  # type: ignore[union-attr]

    with harness.client.session_transaction() as session:
        signed_in = session["signed_in"]
        assert "csrf" not in session
    assert signed_in["sub"] == "user-1"
    stored = harness.portal.token_store.load(signed_in["ref"], 60)
    assert stored == SessionTokens("at-new", "idt-new", "rt-new")
    # The tokens never reach the browser.
    assert "at-new" not in (response.headers.get("Set-Cookie") or "")
    assert "Dana Admin" in harness.client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    ["error=access_denied&state={state}", "code=c-1&state=not-the-state", "code=c-1", "state={state}", ""],
)
def test_an_incomplete_callback_shows_a_friendly_page(harness: Harness, query: str) -> None:
    state = _start_login(harness)
    response = harness.client.get("/auth/callback?" + query.format(state=state))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Sign-in did not complete" in html
    assert 'href="/login"' in html and "Start again" in html
    assert 'role="alert"' in html


def test_a_callback_refused_by_auth_shows_the_friendly_page(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _start_login(harness)

    def refused() -> dict:
        raise OAuthError(error="invalid_grant", description="code expired")

    monkeypatch.setattr(harness.portal.oidc, "authorize_access_token", refused)
    response = harness.client.get(f"/auth/callback?code=c-1&state={state}")
    assert response.status_code == 400
    assert "Sign-in did not complete" in response.get_data(as_text=True)


def test_a_callback_whose_tokens_disagree_is_refused(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _start_login(harness)
    harness.verifier.issue("at-new", sub="someone-else", exp=int(harness.clock()) + 300)
    monkeypatch.setattr(harness.portal.oidc, "authorize_access_token", lambda: _token_response())
    response = harness.client.get(f"/auth/callback?code=c-1&state={state}")
    assert response.status_code == 400
    assert harness.client.get("/").status_code == 302


def test_auth_unreachable_at_callback_is_503(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _start_login(harness)

    def unreachable() -> dict:
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(harness.portal.oidc, "authorize_access_token", unreachable)
    response = harness.client.get(f"/auth/callback?code=c-1&state={state}")
    assert response.status_code == 503


# --- the dashboard ------------------------------------------------------------------------------


def test_dashboard_greets_by_name_and_practice(harness: Harness) -> None:
    harness.sign_in(name="Dana Admin", practice_name="Sunny Dental Group", roles=("admin",))
    response = harness.client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Welcome, Dana Admin" in html
    assert "Sunny Dental Group" in html
    assert "Account administrator" in html
    assert 'role="main"' in html
    assert 'aria-current="page">Dashboard</a>' in html
    assert 'action="/logout"' in html and 'name="csrf_token"' in html
    assert "Content-Security-Policy" in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_every_request_checks_the_token_with_auth(harness: Harness) -> None:
    harness.sign_in(token="at-1")
    harness.client.get("/")
    harness.client.get("/")
    assert harness.verifier.calls == ["at-1", "at-1"]


def test_a_revoked_token_ends_the_session(harness: Harness) -> None:
    ref = harness.sign_in(token="at-1")
    harness.verifier.revoke("at-1")
    response = harness.client.get("/")
    assert _to_login(response) == {"next": "/"}
    assert harness.cookie() is None
    assert harness.portal.token_store.load(ref, 60) is None


def test_auth_unreachable_is_503_and_keeps_the_session(harness: Harness) -> None:
    harness.sign_in()
    harness.verifier.down = True
    response = harness.client.get("/")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "The portal is temporarily unavailable" in html
    assert "Traceback" not in html
    assert response.headers["Retry-After"]
    harness.verifier.down = False
    assert harness.client.get("/").status_code == 200


# --- refreshing ---------------------------------------------------------------------------------


def test_a_token_near_expiry_is_refreshed(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = harness.sign_in(token="at-1", refresh_token="rt-1", ttl_s=300)
    calls: list[dict] = []

    def refresh(**kwargs: str) -> dict:
        calls.append(kwargs)
        harness.verifier.issue("at-2", sub="user-1", exp=int(harness.clock()) + 300)
        return {"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 300}

    monkeypatch.setattr(harness.portal.oidc, "fetch_access_token", refresh)
    harness.client.get("/")
    assert calls == []  # not yet: 300 s left
    harness.clock.advance(275)
    assert harness.client.get("/").status_code == 200
    assert calls == [{"grant_type": "refresh_token", "refresh_token": "rt-1"}]
    assert harness.portal.token_store.load(ref, 60) == SessionTokens("at-2", "idt-1", "rt-2")
    assert harness.verifier.calls[-1] == "at-2"


def test_an_expired_token_is_refreshed_after_a_pause(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    harness.sign_in(token="at-1", refresh_token="rt-1")
    harness.clock.advance(600)  # longer than the token, shorter than the idle time-out
    harness.verifier.expire("at-1")

    def refresh(**_kwargs: str) -> dict:
        harness.verifier.issue("at-2", sub="user-1", exp=int(harness.clock()) + 300)
        return {"access_token": "at-2", "refresh_token": "rt-2"}

    monkeypatch.setattr(harness.portal.oidc, "fetch_access_token", refresh)
    assert harness.client.get("/").status_code == 200


def test_a_refused_refresh_means_signing_in_again(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    harness.sign_in(token="at-1", refresh_token="rt-1", ttl_s=10)

    def refused(**_kwargs: str) -> dict:
        raise OAuthError(error="invalid_grant")

    monkeypatch.setattr(harness.portal.oidc, "fetch_access_token", refused)
    response = harness.client.get("/")
    assert _to_login(response) == {"next": "/"}
    assert harness.cookie() is None


def test_refresh_unreachable_uses_the_old_token_while_it_lasts(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.sign_in(token="at-1", refresh_token="rt-1", ttl_s=10)

    def unreachable(**_kwargs: str) -> dict:
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(harness.portal.oidc, "fetch_access_token", unreachable)
    assert harness.client.get("/").status_code == 200
    harness.verifier.expire("at-1")
    assert harness.client.get("/").status_code == 503


def test_without_a_refresh_token_an_expired_token_means_a_fresh_sign_in(harness: Harness) -> None:
    harness.sign_in(token="at-1", refresh_token="")
    harness.verifier.expire("at-1")
    response = harness.client.get("/")
    assert _to_login(response) == {"next": "/"}


# --- signing out --------------------------------------------------------------------------------


def test_logout_needs_the_csrf_token(harness: Harness) -> None:
    harness.sign_in()
    response = harness.client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert harness.client.get("/").status_code == 200  # still signed in


def test_logout_ends_the_session_and_signs_out_at_auth(harness: Harness) -> None:
    ref = harness.sign_in()
    token = harness.csrf_from("/")
    response = harness.client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{ISSUER}/logout?")
    assert _query(location) == {
        "client_id": "portal",
        "post_logout_redirect_uri": f"{PORTAL_URL}/signed-out",
        "id_token_hint": "idt-1",
    }
    assert harness.cookie() is None
    assert harness.portal.token_store.load(ref, 60) is None
    assert harness.client.get("/").status_code == 302


def test_signed_out_page_offers_to_sign_in_again(harness: Harness) -> None:
    response = harness.client.get("/signed-out")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "You have signed out" in html
    assert '<a class="button" href="/login">Sign in again</a>' in html


# --- outages and maintenance --------------------------------------------------------------------


def test_redis_down_is_503_never_500(harness: Harness) -> None:
    harness.sign_in()
    harness.redis.down = True
    for path in ("/", "/login", "/signed-out"):
        response = harness.client.get(path)
        assert response.status_code == 503, path
        assert "The portal is temporarily unavailable" in response.get_data(as_text=True)
    assert harness.client.get("/healthz").status_code == 200
    assert harness.client.get("/readyz").status_code == 503


def test_maintenance_mode_answers_503_with_retry_after(harness: Harness) -> None:
    Maintenance(harness.redis, "unit:").turn_on("Back at 3 pm.")  # type: ignore[arg-type]
    response = harness.client.get("/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "300"
    assert "Back at 3 pm." in response.get_data(as_text=True)
    assert harness.client.get("/healthz").status_code == 200
    assert harness.client.get("/static/portal.css").status_code == 200


def test_readyz_names_each_dependency(harness: Harness) -> None:
    body = harness.client.get("/readyz").get_json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "auth_grpc": "ok"}
    harness.verifier.down = True
    body = harness.client.get("/readyz").get_json()
    assert body["checks"]["auth_grpc"].startswith("failing")


def test_tls_settings_use_a_host_prefixed_secure_cookie() -> None:
    harness = build_harness(make_settings(url="https://portal.test"))
    harness.client.get("/login")
    cookie = harness.client.get_cookie("__Host-pc_portal_session")
    assert cookie is not None and cookie.secure and cookie.http_only


def test_templates_have_no_inline_styles_or_scripts() -> None:
    # Only a script file of our own, loaded from /static, is allowed (the support thread's poller).
    own_script = re.compile(
        r"""<script src="\{\{ url_for\('static', filename='[a-z_-]+\.js'\) \}\}" defer></script>"""
    )
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert "style=" not in text and "<style" not in text, template.name
        text = own_script.sub("", text)
        assert "<script" not in text and " on" + "click=" not in text, template.name


def test_redis_failing_while_saving_the_session_is_503(harness: Harness) -> None:
    harness.sign_in()
    real_verify = harness.verifier.verify

    def verify_then_lose_redis(token: str):  # type: ignore[no-untyped-def]
        answer = real_verify(token)
        harness.redis.down = True  # after the session was read, before it is written
        return answer

    harness.verifier.verify = verify_then_lose_redis  # type: ignore[method-assign]
    response = harness.client.get("/")
    assert response.status_code == 503
    assert "The portal is temporarily unavailable" in response.get_data(as_text=True)
    assert "Welcome" not in response.get_data(as_text=True)


def test_dashboard_falls_back_to_the_portal_profile_for_the_practice_name(harness: Harness) -> None:
    from services.portal.store import practices

    practices.upsert(harness.portal.db, "p-fallback", "Fallback Family Dental")
    harness.sign_in(practice_id="p-fallback", practice_name="")
    assert "Fallback Family Dental" in harness.client.get("/").get_data(as_text=True)
