"""The audit chain: links, verification, and each kind of tampering (in-memory SQLite).

Concurrent writers and the CLI run against real databases in
tests/integration/portal/test_audit_chain.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from services.common.db import transaction
from services.portal import audit
from services.portal.store.models import AuditEntry, AuditHead
from tests.unit.portal.factories import World, make_practice, make_world


@pytest.fixture
def world() -> World:
    w = make_world()
    practice = make_practice(w.db)
    actor = practice.actor("admin")
    log = audit.AuditLog(w.clock)
    for index in range(6):
        with transaction(w.db) as session:
            log.append(session, actor, "account.view", object_type="account", object_id=f"acc_{index:016x}")
        w.clock.advance(1.5)
    return w


def test_each_entry_links_to_the_one_before(world: World) -> None:
    with world.db() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        head = session.get(AuditHead, 1)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].prev_hash == audit.GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    assert head is not None and (head.seq, head.hash) == (6, rows[-1].hash)
    result = audit.verify(world.db)
    assert result.ok and result.entries == 6
    assert result.line() == f"audit log intact: 6 entries, head {rows[-1].hash}"


def _tamper(world: World, statement) -> audit.Verification:  # type: ignore[no-untyped-def]
    with transaction(world.db) as session:
        session.execute(statement)
    return audit.verify(world.db)


def test_an_edited_entry_is_found(world: World) -> None:
    result = _tamper(world, update(AuditEntry).where(AuditEntry.seq == 3).values(actor_sub="someone-else"))
    assert not result.ok
    assert result.problem == "entry 3 was altered: its hash does not match its contents"


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(world: World) -> None:
    with world.db() as session:
        row = session.get(AuditEntry, 3)
        assert row is not None
        values = {name: getattr(row, name) for name in audit.HASHED} | {"outcome": "not_found"}
    result = _tamper(
        world, update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="not_found", hash=audit.entry_hash(values))
    )
    assert result.problem.startswith("entry 4 does not link to entry 3")


def test_a_removed_entry_is_found(world: World) -> None:
    result = _tamper(world, delete(AuditEntry).where(AuditEntry.seq == 2))
    assert result.problem == "entry 2 is missing (the next entry is 3)"


def test_a_cut_off_tail_is_found_by_the_checkpoint(world: World) -> None:
    result = _tamper(world, delete(AuditEntry).where(AuditEntry.seq >= 5))
    assert result.problem == "the log ends at entry 4 but the checkpoint is at entry 6: the tail was cut off"


def test_a_tail_cut_with_the_checkpoint_moved_back_is_found_by_an_anchor(world: World) -> None:
    with world.db() as session:
        sixth = session.get(AuditEntry, 6)
        fourth = session.get(AuditEntry, 4)
        assert sixth is not None and fourth is not None
        anchor, fourth_hash = (6, sixth.hash), fourth.hash
    assert audit.verify(world.db, anchor=anchor).ok
    _tamper(world, delete(AuditEntry).where(AuditEntry.seq >= 5))
    result = _tamper(world, update(AuditHead).values(seq=4, hash=fourth_hash))
    assert result.ok  # consistent, as far as the database alone can tell
    anchored = audit.verify(world.db, anchor=anchor)
    assert not anchored.ok and "anchored entry 6 is not in the log" in anchored.problem
