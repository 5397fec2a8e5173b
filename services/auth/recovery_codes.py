"""Single-use recovery codes: ten 80-bit codes shown once, stored as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.auth.store.models import RecoveryCode
from services.common.db import utcnow

COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _hash(key: bytes, code: str) -> str:
    return hmac.new(key, _normalise(code).encode(), hashlib.sha256).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    cleaned = _normalise(code)
    return len(cleaned) == 16 and all(ch in _ALPHABET for ch in cleaned)


def issue(db: Session, key: bytes, user_pk: str) -> list[str]:
    """A new set of codes; any earlier set stops working."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_pk == user_pk))
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
        codes.append(code)
        db.add(RecoveryCode(user_pk=user_pk, code_hash=_hash(key, code)))
    return codes


def redeem(db: Session, key: bytes, user_pk: str, code: str) -> bool:
    """Use a code once; False when it is wrong or already used."""
    digest = _hash(key, code)
    row = db.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_pk == user_pk, RecoveryCode.code_hash == digest, RecoveryCode.used_at.is_(None)
        )
    )
    if row is None:
        return False
    claimed = db.execute(
        update(RecoveryCode)
        .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    return claimed == 1


def remaining(db: Session, user_pk: str) -> int:
    return len(
        list(
            db.scalars(
                select(RecoveryCode.id).where(RecoveryCode.user_pk == user_pk, RecoveryCode.used_at.is_(None))
            )
        )
    )
