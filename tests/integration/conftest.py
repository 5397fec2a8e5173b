from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.infra import Databases
from tests.support.stack import Stack, make_stack


@pytest.fixture
def stack(tmp_path: Path, databases: Databases, redis_url: str) -> Iterator[Stack]:
    """A configured, migrated, not yet started system; stopped at the end of the test."""
    system = make_stack(tmp_path / "stack", databases, redis_url)
    yield system
    system.stop()
