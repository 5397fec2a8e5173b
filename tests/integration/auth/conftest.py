from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from services.auth.bootstrap import Container
from services.auth.web.app import create_app
from tests.support.auth_factory import auth_env, make_container
from tests.support.infra import Databases


@pytest.fixture
def auth_container(
    databases: Databases, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[Container]:
    env = auth_env(databases.new("auth"), redis_url, redis_prefix, tmp_path)
    container = make_container(env)
    yield container
    container.engine.dispose()


@pytest.fixture
def auth_app(auth_container: Container, monkeypatch: pytest.MonkeyPatch) -> Flask:
    # Flask's test client calls itself http://localhost (no port), which Authlib
    # would refuse as insecure transport; real runs use 127.0.0.1:port or https.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    app = create_app(auth_container)
    app.config["TESTING"] = True
    return app
