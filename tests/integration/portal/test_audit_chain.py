"""The audit chain on a real database (PostgreSQL when PC_TEST_DATABASE_URL is set):
eight concurrent writers keep it one line, and ``providerctl portal audit verify``
finds an edited entry, a removed one and a cut-off tail."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update

from services import migrate
from services.common import db
from services.portal import audit
from services.portal.permissions import Actor
from services.portal.store.models import AuditEntry
from tests.support.infra import Databases, random_id

pytestmark = pytest.mark.integration

WRITERS = 8
EACH = 25


def _migrated(databases: Databases, tmp_path: Path) -> str:
    url = databases.new("portal")
    migrate.upgrade("portal", {"PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)})
    return url


def test_eight_concurrent_writers_keep_one_chain(
    databases: Databases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _migrated(databases, tmp_path)
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    log = audit.AuditLog(__import__("time").time)
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        actor = Actor(sub=f"writer-{index}", practice_id="p-race", roles=("admin",), ip="127.0.0.1")
        try:
            start.wait()
            for n in range(EACH):
                with db.transaction(factory) as session:
                    log.append(
                        session, actor, "account.view", object_type="account", object_id=f"{index}-{n}"
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not errors, errors[:3]
        with factory() as session:
            rows = session.execute(
                select(AuditEntry.seq, AuditEntry.prev_hash, AuditEntry.hash).order_by(AuditEntry.seq)
            ).all()
        assert [row.seq for row in rows] == list(range(1, WRITERS * EACH + 1))
        # One line: every entry's predecessor is the entry just before it, and no hash is anyone else's parent twice.
        assert len({row.prev_hash for row in rows}) == len(rows)
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.prev_hash == before.hash
        result = audit.verify(factory)
        assert result.ok and result.entries == WRITERS * EACH
        writers_seen = {sub for (sub,) in factory().execute(select(AuditEntry.actor_sub).distinct()).all()}
        assert writers_seen == {f"writer-{i}" for i in range(WRITERS)}
        with capsys.disabled():
            print(f"\n{WRITERS} writers × {EACH} entries on {engine.dialect.name}: one chain of {len(rows)}")
    finally:
        engine.dispose()


def _verify_process(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """``providerctl portal audit verify`` as an operator runs it: a process of its own."""
    env = {**os.environ, "PORTAL_DATABASE_URL": url, "PC_VAR_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "portal", "audit", "verify", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verify_finds_each_kind_of_tampering(
    databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    monkeypatch.setenv("PORTAL_DATABASE_URL", "")

    def _verify(url: str, _tmp: Path, *extra: str) -> subprocess.CompletedProcess:
        # The same command in this process (a process start costs seconds; one run below is a real one).
        monkeypatch.setenv("PORTAL_DATABASE_URL", url)
        code = main(["portal", "audit", "verify", *extra])
        out = capsys.readouterr()
        return subprocess.CompletedProcess([], code, out.out, out.err)

    url = _migrated(databases, tmp_path)
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    log = audit.AuditLog(__import__("time").time)
    actor = Actor(sub=random_id("sub-"), practice_id="p-tamper", roles=("admin",), ip="198.51.100.4")
    for n in range(10):
        with db.transaction(factory) as session:
            log.append(
                session, actor, "application.view", object_type="application", object_id=f"app_{n:016x}"
            )

    def rows(*seqs: int) -> list[dict]:
        with factory() as session:
            found = session.scalars(
                select(AuditEntry).where(AuditEntry.seq.in_(seqs)).order_by(AuditEntry.seq)
            ).all()
            return [{c.name: getattr(r, c.name) for c in AuditEntry.__table__.columns} for r in found]

    def change(statement) -> None:  # type: ignore[no-untyped-def]
        with db.transaction(factory) as session:
            session.execute(statement)

    try:
        intact = _verify(url, tmp_path)
        assert intact.returncode == 0, intact.stderr
        assert intact.stdout.startswith("audit log intact: 10 entries, head ")
        anchor = intact.stdout.rsplit("(anchor: ", 1)[1].rstrip(")\n")

        original = rows(4)[0]
        change(update(AuditEntry).where(AuditEntry.seq == 4).values(object_id="app_ffffffffffffffff"))
        edited = _verify_process(url, tmp_path)
        assert edited.returncode == 1
        assert (
            edited.stderr.strip()
            == "providerctl: audit log tampered: entry 4 was altered: its hash does not match its contents"
        )
        change(update(AuditEntry).where(AuditEntry.seq == 4).values(object_id=original["object_id"]))
        assert _verify(url, tmp_path).returncode == 0

        removed_row = rows(6)[0]
        change(delete(AuditEntry).where(AuditEntry.seq == 6))
        removed = _verify(url, tmp_path)
        assert removed.returncode == 1
        assert (
            removed.stderr.strip()
            == "providerctl: audit log tampered: entry 6 is missing (the next entry is 7)"
        )
        change(insert(AuditEntry).values(**removed_row))
        assert _verify(url, tmp_path).returncode == 0

        change(delete(AuditEntry).where(AuditEntry.seq > 8))
        cut = _verify(url, tmp_path)
        assert cut.returncode == 1
        assert cut.stderr.count("\n") == 1 and "the tail was cut off" in cut.stderr
        anchored = _verify(url, tmp_path, "--anchor", anchor)
        assert anchored.returncode == 1 and "tampered" in anchored.stderr
    finally:
        engine.dispose()
