"""Fixtures every test layer shares: Redis, databases, ids (see tests/support/infra.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.common.redis_conn import connect
from tests.support.infra import Databases, OwnRedis, random_id, shared_redis_url
from tests.support.stack import Stack, make_stack


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: the shared one CI names, or one started for this session."""
    shared = shared_redis_url()
    if shared:
        yield shared
        return
    server = OwnRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own; never flush a shared server."""
    return random_id("test:") + ":"


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return connect(redis_url)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis server this test may stop and start (outage tests)."""
    server = OwnRedis(tmp_path / "own-redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


@pytest.fixture
def stack(tmp_path: Path, databases: Databases, redis_url: str) -> Iterator[Stack]:
    """A configured, migrated, not yet started system of real processes; stopped at the end."""
    system = make_stack(tmp_path / "stack", databases, redis_url)
    yield system
    system.stop()
