"""The portal on a real Redis that goes away, and in maintenance mode."""

from __future__ import annotations

import time

import pytest

from services.common.maintenance import Maintenance
from services.common.redis_conn import connect
from services.portal.tokens import SessionTokens
from services.portal.web.app import create_app
from services.portal.web.context import EXTENSION
from tests.support.infra import OwnRedis, random_id
from tests.unit.portal.conftest import METADATA, make_settings, memory_engine
from tests.unit.portal.fakes import FakeVerifier

pytestmark = pytest.mark.integration


def portal_on(redis_url: str, prefix: str, verifier: FakeVerifier):  # type: ignore[no-untyped-def]
    settings = make_settings(redis_url=redis_url, redis_key_prefix=prefix)
    return create_app(
        settings,
        verifier=verifier,
        redis_client=connect(redis_url),
        engine=memory_engine(),
        oidc_metadata=METADATA,
    )


def sign_in(app, verifier: FakeVerifier):  # type: ignore[no-untyped-def]
    """A browser with a signed-in session, as a completed callback leaves it."""
    verifier.issue("at-1", sub="u-1", exp=int(time.time()) + 300, name="Dana Admin", practice_name="Sunny")
    ref = app.extensions[EXTENSION].token_store.create(SessionTokens("at-1", "idt-1", ""), 900)
    client = app.test_client()
    with client.session_transaction() as session:
        session["signed_in"] = {"sub": "u-1", "sid": "s-1", "ref": ref, "name": "", "at": 0}
    return client


def test_redis_down_is_a_503_page_never_a_stack_trace(own_redis: OwnRedis) -> None:
    verifier = FakeVerifier()
    app = portal_on(own_redis.url, random_id("t:") + ":", verifier)
    client = sign_in(app, verifier)
    assert client.get("/").status_code == 200

    own_redis.stop()
    for path in ("/", "/login", "/signed-out"):
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 503, path
        assert "The portal is temporarily unavailable" in html
        assert "Traceback" not in html and "redis" not in html.lower()
        assert response.headers["Retry-After"]
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["redis"].startswith("failing")

    # A restarted Redis kept nothing (no persistence): the portal recovers by asking to sign in again.
    own_redis.start()
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_maintenance_mode_on_a_shared_redis(redis_url: str, redis_prefix: str) -> None:
    verifier = FakeVerifier()
    app = portal_on(redis_url, redis_prefix, verifier)
    client = sign_in(app, verifier)
    maintenance = Maintenance(connect(redis_url), redis_prefix)
    maintenance.turn_on("Upgrading the statements service; back by 14:00 UTC.")
    try:
        response = client.get("/")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "300"
        assert "back by 14:00 UTC" in response.get_data(as_text=True)
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/static/portal.css").status_code == 200
    finally:
        maintenance.turn_off()
