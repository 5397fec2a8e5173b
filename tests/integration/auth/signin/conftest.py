from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.auth.web.app import create_app
from tests.integration.auth.signin.support import Auth
from tests.support.auth_factory import auth_env, make_container
from tests.support.infra import Databases, random_id


def build_auth(databases: Databases, redis_url: str, directory: Path, **extra: str) -> Auth:
    """An auth app on real Redis (a key prefix of its own) and a fresh real database."""
    env = auth_env(
        databases.new("auth"), redis_url, random_id("test:") + ":", directory / random_id("var-"), **extra
    )
    container = make_container(env)
    return Auth(env, container, create_app(container))


@pytest.fixture(scope="module")
def auth(databases: Databases, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Auth]:
    """One app with default settings for a module's tests; they keep apart by their own random users."""
    with pytest.MonkeyPatch.context() as patch:
        # Flask's test client calls itself http://localhost, which Authlib would refuse.
        patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        built = build_auth(databases, redis_url, tmp_path_factory.mktemp("auth"))
        yield built
        built.container.engine.dispose()


@pytest.fixture
def make_auth(
    databases: Databases, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Auth]]:
    """Builds an app with this test's own settings (``redis=`` points it at another server)."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    made: list[Auth] = []

    def factory(*, redis: str | None = None, **extra: str) -> Auth:
        built = build_auth(databases, redis or redis_url, tmp_path, **extra)
        made.append(built)
        return built

    yield factory
    for built in made:
        built.container.engine.dispose()
