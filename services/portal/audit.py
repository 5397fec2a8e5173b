"""The audit log: who saw or changed which patient or account data, when, from where.

Tamper-evident: each entry carries the SHA-256 hash of the one before it and its
own hash over all its fields, so editing an entry breaks its hash, removing one
breaks the next entry's link, and :func:`verify` finds both. A checkpoint row
(``audit_head``: the last ``seq`` and ``hash``) finds a cut-off tail, and doubles
as the lock that keeps the chain one line: every append locks it (``SELECT … FOR
UPDATE`` on PostgreSQL; on SQLite every write transaction already starts with
``BEGIN IMMEDIATE``, one writer at a time).

Limits, on purpose: someone who can rewrite the whole table *and* the checkpoint
can forge a consistent chain. ``verify`` prints the head hash; keeping that line
somewhere else (a ticket, the ops log) and passing it back with ``--anchor``
proves the chain still contains it.

Entries never hold patient data values — no names, numbers or search terms —
only object types and ids, the outcome and a short non-identifying detail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from services.portal.permissions import Actor
from services.portal.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1
# The fields an entry's hash covers, in this order (with ``prev_hash``).
HASHED = (
    "seq",
    "at",
    "practice_id",
    "actor_sub",
    "actor_name",
    "actor_roles",
    "channel",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "ip",
    "request_id",
    "detail",
    "prev_hash",
)


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(values: dict[str, object]) -> str:
    """SHA-256 (hex) of the canonical JSON of the hashed fields."""
    canonical = {name: values[name] for name in HASHED}
    at = canonical["at"]
    canonical["at"] = _at_text(at) if isinstance(at, datetime) else str(at)
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _clip(value: str, length: int) -> str:
    return value[:length]


class AuditLog:
    """Appends entries inside the caller's transaction, so an entry exists exactly when the work does."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def append(
        self,
        session: Session,
        actor: Actor,
        action: str,
        *,
        object_type: str = "",
        object_id: str = "",
        outcome: str = "ok",
        detail: str = "",
    ) -> int:
        """Add one entry at the end of the chain; returns its ``seq``."""
        head = _lock_head(session)
        seq = head.seq + 1
        # Microseconds are what both SQLite and PostgreSQL keep, so the hash survives a round trip.
        at = datetime.fromtimestamp(self._clock(), UTC)
        values: dict[str, object] = {
            "seq": seq,
            "at": at,
            "practice_id": _clip(actor.practice_id, 64),
            "actor_sub": _clip(actor.sub, 64),
            "actor_name": _clip(actor.name, 200),
            "actor_roles": _clip(" ".join(actor.roles), 200),
            "channel": _clip(actor.channel, 8),
            "action": _clip(action, 40),
            "object_type": _clip(object_type, 20),
            "object_id": _clip(object_id, 64),
            "outcome": _clip(outcome, 16),
            "ip": _clip(actor.ip, 64),
            "request_id": _clip(actor.request_id, 64),
            "detail": _clip(detail, 200),
            "prev_hash": head.hash,
        }
        values["hash"] = entry_hash(values)
        session.execute(insert(AuditEntry).values(**values))
        session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=seq, hash=values["hash"]))
        return seq


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str


def _lock_head(session: Session) -> _Head:
    query = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID).with_for_update()
    row = session.execute(query).one_or_none()
    if row is None:
        # Only a database made without the migrations (unit tests) lacks the row.
        dialect = session.get_bind().dialect.name
        values = {"id": HEAD_ID, "seq": 0, "hash": GENESIS}
        if dialect == "postgresql":
            session.execute(postgresql.insert(AuditHead).values(values).on_conflict_do_nothing())
        else:
            session.execute(sqlite.insert(AuditHead).values(values).on_conflict_do_nothing())
        row = session.execute(query).one()
    return _Head(row.seq, row.hash)


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str = ""

    def line(self) -> str:
        if self.ok:
            return f"audit log intact: {self.entries} entries, head {self.head_hash}"
        return f"audit log tampered: {self.problem}"


def _entries(session: Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(
    factory: sessionmaker[Session], *, anchor: tuple[int, str] | None = None, batch: int = 2000
) -> Verification:
    """Walk the chain from the first entry; report the first problem found.

    Finds: an edited entry (its hash no longer matches its fields), a removed
    entry (a gap in ``seq`` or a broken ``prev_hash`` link), a cut-off tail (the
    chain ends before the checkpoint), and — with ``anchor`` = (seq, hash) from
    an earlier run — a rewritten history.
    """
    with factory() as session:
        head_row = session.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
        ).one_or_none()
        head = _Head(head_row.seq, head_row.hash) if head_row else _Head(0, GENESIS)
        expected, prev, anchored = 1, GENESIS, anchor is None

        def bad(problem: str) -> Verification:
            return Verification(False, expected - 1, head.seq, head.hash, problem)

        for entry in _entries(session, batch):
            if entry.seq != expected:
                return bad(f"entry {expected} is missing (the next entry is {entry.seq})")
            values = {name: getattr(entry, name) for name in HASHED}
            if entry.prev_hash != prev:
                return bad(
                    f"entry {entry.seq} does not link to entry {entry.seq - 1}: "
                    "an entry was removed or replaced"
                )
            if entry_hash(values) != entry.hash:
                return bad(f"entry {entry.seq} was altered: its hash does not match its contents")
            if anchor is not None and entry.seq == anchor[0]:
                if entry.hash != anchor[1]:
                    return bad(f"entry {entry.seq} is not the anchored entry: the history was rewritten")
                anchored = True
            prev = entry.hash
            expected += 1
        count = expected - 1
        if count < head.seq:
            return bad(
                f"the log ends at entry {count} but the checkpoint is at entry {head.seq}: "
                "the tail was cut off"
            )
        if count > head.seq or prev != head.hash:
            return bad(f"the checkpoint (entry {head.seq}) does not match the last entry ({count})")
        if not anchored:
            return bad(
                f"the anchored entry {anchor[0] if anchor else 0} is not in the log: the tail was cut off"
            )
        return Verification(True, count, head.seq, head.hash)


def count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
