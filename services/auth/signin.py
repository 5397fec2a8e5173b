"""The sign-in rules: User ID + password, then the second factor.

Web code asks this module what happened and shows the matching page; the
rules (what is checked, in which order, what is logged) live here only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.orm import Session

from services.auth import directory, events, totp
from services.auth.bootstrap import Container
from services.auth.events import Origin
from services.auth.store.models import Practice, User
from services.common.db import transaction, utcnow


class Outcome(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    SUSPENDED = "suspended"
    NEEDS_ENROLLMENT = "needs_enrollment"
    BAD_CODE = "bad_code"


@dataclass(frozen=True)
class PasswordResult:
    outcome: Outcome
    user_pk: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class CodeResult:
    outcome: Outcome
    amr: tuple[str, ...] = ()


class SignIn:
    def __init__(self, container: Container) -> None:
        self.c = container

    def check_password(self, user_id: str, password: str, origin: Origin) -> PasswordResult:
        """Verify the first factor. An unknown User ID costs the same work as a known one."""
        submitted = directory.normalise_user_id(user_id)[:64]
        with transaction(self.c.db) as db:
            user = directory.find_user(db, submitted)
            ok = self.c.passwords.verify(user.password_hash if user else None, password)
            if not ok or user is None:
                events.record(
                    db,
                    "sign_in.password",
                    user_id=submitted,
                    outcome="failure",
                    reason="bad_credentials",
                    origin=origin,
                    practice_id=user.practice_id if user else None,
                )
                return PasswordResult(Outcome.BAD_CREDENTIALS)
            if user.password_hash and self.c.passwords.needs_rehash(user.password_hash):
                user.password_hash = self.c.passwords.hash(password)
            # Only now, after the right password, may the account's status be told.
            if user.status != "active":
                events.record(
                    db,
                    "sign_in.password",
                    user_id=submitted,
                    practice_id=user.practice_id,
                    outcome="failure",
                    reason=user.status,
                    origin=origin,
                )
                return PasswordResult(Outcome.SUSPENDED, user.id, user.user_id)
            events.record(
                db, "sign_in.password", user_id=submitted, practice_id=user.practice_id, origin=origin
            )
            if user.totp_secret_enc is None:
                return PasswordResult(Outcome.NEEDS_ENROLLMENT, user.id, user.user_id)
            return PasswordResult(Outcome.OK, user.id, user.user_id)

    def check_code(self, user_pk: str, code: str, origin: Origin, now: float | None = None) -> CodeResult:
        """Verify the second factor: a TOTP code (each time step once) or a recovery code."""
        now = time.time() if now is None else now
        with transaction(self.c.db) as db:
            user = db.get(User, user_pk)
            if user is None or user.totp_secret_enc is None:
                return CodeResult(Outcome.BAD_CREDENTIALS)
            secret = self.c.secret_box.open(user.totp_secret_enc, user.id)
            step = totp.matching_step(secret, code, now)
            if step is not None and self._claim_step(user.id, step):
                self._succeeded(db, user, origin, "otp")
                return CodeResult(Outcome.OK, ("pwd", "otp"))
            events.record(
                db,
                "sign_in.code",
                user_id=user.user_id,
                practice_id=user.practice_id,
                outcome="failure",
                reason="replayed_code" if step is not None else "bad_code",
                origin=origin,
            )
            return CodeResult(Outcome.BAD_CODE)

    def _claim_step(self, user_pk: str, step: int) -> bool:
        """Record the time step as used; False when it was used before (RFC 6238 §5.2)."""
        key = self.c.keys("totp-used", user_pk, step)
        # Kept past the ±1 window so the step cannot come back within it.
        return bool(self.c.redis.set(key, b"1", nx=True, ex=totp.STEP_S * (2 * totp.WINDOW + 2)))

    def _succeeded(self, db: Session, user: User, origin: Origin, factor: str) -> None:
        user.last_sign_in_at = utcnow()
        events.record(
            db,
            "sign_in.success",
            user_id=user.user_id,
            practice_id=user.practice_id,
            origin=origin,
            details={"factor": factor},
        )

    def practice_name(self, practice_id: str) -> str:
        with self.c.db() as db:
            practice = db.get(Practice, practice_id)
            return practice.name if practice else ""
