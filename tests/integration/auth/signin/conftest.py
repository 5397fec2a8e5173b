from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.auth.web.app import create_app
from tests.integration.auth.signin.support import Auth
from tests.support.auth_factory import auth_env, make_container
from tests.support.infra import Databases, random_id


@pytest.fixture
def make_auth(
    databases: Databases, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Auth]]:
    """Builds an auth app on real Redis and a fresh real database, with this test's settings.

    Each app gets a Redis key prefix of its own; ``redis=`` points one at another server.
    """
    # Flask's test client calls itself http://localhost, which Authlib would refuse.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    made: list[Auth] = []

    def factory(*, redis: str | None = None, **extra: str) -> Auth:
        var_dir = tmp_path / random_id("var-")
        env = auth_env(databases.new("auth"), redis or redis_url, random_id("test:") + ":", var_dir, **extra)
        container = make_container(env)
        app = create_app(container)
        auth = Auth(env, container, app)
        made.append(auth)
        return auth

    yield factory
    for auth in made:
        auth.container.engine.dispose()


@pytest.fixture
def auth(make_auth: Callable[..., Auth]) -> Auth:
    return make_auth()
