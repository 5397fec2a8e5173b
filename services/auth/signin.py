"""The sign-in rules: User ID + password, then the second factor, under the
lockout and throttling rules of lockout.py.

Web code asks this module what happened and shows the matching page; the
rules (what is checked, in which order, what is logged and emailed) live
here only. Order matters:

1. lockout/throttle admission in Redis, before any password work (and if
   Redis cannot answer, refuse: fail closed);
2. the password (argon2id; an unknown User ID costs the same);
3. only after the right password, the account status (so strangers learn
   nothing about suspended accounts);
4. the second factor — always: TOTP (each time step once) or a recovery code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import redis
from sqlalchemy.orm import Session

from services.auth import directory, events, link_tokens, outbox, recovery_codes, totp
from services.auth.bootstrap import Container
from services.auth.events import Origin
from services.auth.lockout import PERMANENT_UNTIL, Attempt, Kind, Verdict
from services.auth.store.models import Practice, User
from services.common.db import transaction, utcnow

# The event each kind of attempt is logged under, whether checked or refused.
_EVENTS = {Kind.PASSWORD: "sign_in.password", Kind.SECOND_FACTOR: "sign_in.code"}


class Outcome(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    SUSPENDED = "suspended"
    NEEDS_ENROLLMENT = "needs_enrollment"
    BAD_CODE = "bad_code"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    user_pk: str | None = None
    user_id: str | None = None
    retry_after_s: int = 0
    amr: tuple[str, ...] = ()


class SignIn:
    def __init__(self, container: Container) -> None:
        self.c = container

    def _admit(self, kind: Kind, user_id: str, device: str | None, origin: Origin) -> Attempt | Result:
        try:
            attempt = self.c.lockout.begin(kind, user_id, device, origin.ip, time.time())
        except redis.RedisError:
            return Result(Outcome.UNAVAILABLE)
        if attempt.verdict is Verdict.ADMITTED:
            return attempt
        outcome = Outcome.LOCKED if attempt.verdict is Verdict.LOCKED else Outcome.THROTTLED
        with transaction(self.c.db) as db:
            events.record(
                db,
                _EVENTS[kind],
                user_id=user_id,
                outcome="refused",
                reason=outcome.value,
                origin=origin,
            )
        return Result(outcome, retry_after_s=attempt.retry_after_s)

    def check_password(
        self, user_id: str, password: str, origin: Origin, device_cookie: str | None
    ) -> Result:
        """Verify the first factor."""
        submitted = directory.normalise_user_id(user_id)[:64]
        device = self.c.devices.device_for(device_cookie, submitted)
        admitted = self._admit(Kind.PASSWORD, submitted, device, origin)
        if isinstance(admitted, Result):
            # Refused before any password check, and cheaply. The page says why (locked
            # or throttled, alike for known and unknown User IDs), so spending a
            # verification's work here would hide nothing, and would hand anyone who
            # hammers a locked account an argon2 computation per request.
            return admitted
        attempt = admitted
        # The slow argon2 verification runs outside any database transaction: on
        # SQLite a write transaction holds the database lock, and nothing here
        # needs one until the outcome is recorded.
        with self.c.db() as db:
            found = directory.find_user(db, submitted)
            stored_hash = found.password_hash if found else None
        ok = self.c.passwords.verify(stored_hash, password)
        with transaction(self.c.db) as db:
            user = directory.find_user(db, submitted)
            if user is not None and user.password_hash != stored_hash:
                # The password changed while we were verifying: judge against the new one.
                ok = self.c.passwords.verify(user.password_hash, password)
            if not ok or user is None:
                self._failed(
                    db, attempt, submitted, user, "sign_in.password", "bad_credentials", origin, device
                )
                return Result(Outcome.BAD_CREDENTIALS)
            if user.password_hash and self.c.passwords.needs_rehash(user.password_hash):
                user.password_hash = self.c.passwords.hash(password)
            try:
                self.c.lockout.succeeded_step(attempt)
            except redis.RedisError:
                return Result(Outcome.UNAVAILABLE)
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
                return Result(Outcome.SUSPENDED, user.id, user.user_id)
            events.record(
                db, "sign_in.password", user_id=submitted, practice_id=user.practice_id, origin=origin
            )
            if user.totp_secret_enc is None:
                return Result(Outcome.NEEDS_ENROLLMENT, user.id, user.user_id)
            return Result(Outcome.OK, user.id, user.user_id)

    def check_code(
        self, user_pk: str, code: str, origin: Origin, device_cookie: str | None, now: float | None = None
    ) -> Result:
        """Verify the second factor: a TOTP code (each time step once) or a recovery code."""
        now = time.time() if now is None else now
        with self.c.db() as db:
            user = db.get(User, user_pk)
            if user is None or user.totp_secret_enc is None or user.status != "active":
                return Result(Outcome.BAD_CODE)
            user_id = user.user_id
        device = self.c.devices.device_for(device_cookie, user_id)
        admitted = self._admit(Kind.SECOND_FACTOR, user_id, device, origin)
        if isinstance(admitted, Result):
            return admitted
        attempt = admitted
        with transaction(self.c.db) as db:
            user = db.get(User, user_pk)
            assert user is not None and user.totp_secret_enc is not None
            amr: tuple[str, ...] = ()
            reason = "bad_code"
            if recovery_codes.looks_like_recovery_code(code):
                if recovery_codes.redeem(db, self.c.settings.totp_key, user.id, code):
                    amr = ("pwd", "rc")
            else:
                secret = self.c.secret_box.open(user.totp_secret_enc, user.id)
                step = totp.matching_step(secret, code, now)
                if step is not None:
                    try:
                        fresh = self.claim_step(user.id, step)
                    except redis.RedisError:
                        return Result(Outcome.UNAVAILABLE)
                    if fresh:
                        amr = ("pwd", "otp")
                    else:
                        reason = "replayed_code"
            if not amr:
                self._failed(db, attempt, user.user_id, user, "sign_in.code", reason, origin, device)
                return Result(Outcome.BAD_CODE)
            try:
                self.c.lockout.signed_in(attempt, user.user_id, device)
            except redis.RedisError:
                return Result(Outcome.UNAVAILABLE)
            user.last_sign_in_at = utcnow()
            events.record(
                db,
                "sign_in.success",
                user_id=user.user_id,
                practice_id=user.practice_id,
                origin=origin,
                details={"factor": amr[1]},
            )
            return Result(Outcome.OK, user.id, user.user_id, amr=amr)

    def _failed(
        self,
        db: Session,
        attempt: Attempt,
        submitted: str,
        user: User | None,
        event: str,
        reason: str,
        origin: Origin,
        device: str | None,
    ) -> None:
        events.record(
            db,
            event,
            user_id=submitted,
            practice_id=user.practice_id if user else None,
            outcome="failure",
            reason=reason,
            origin=origin,
        )
        if not attempt.locks_on_failure:
            return
        events.record(
            db,
            "account.locked",
            user_id=submitted,
            practice_id=user.practice_id if user else None,
            origin=origin,
            details={"failures": attempt.failures, "device": "trusted" if device else "unknown"},
        )
        if user is not None and user.status == "active":
            self._email_lockout(db, user, device)

    def _email_lockout(self, db: Session, user: User, device: str | None) -> None:
        """Tell the owner, once per lockout, with a link that lifts it (it proves they hold the mailbox)."""
        token = link_tokens.issue(db, user.id, "unlock")
        until = self.c.lockout.locked_until(user.user_id, device)
        practice = db.get(Practice, user.practice_id)
        outbox.enqueue(
            db,
            "account_locked",
            user.email,
            {
                "name": user.name,
                "locked_until": _when(until) if until else "for a while",
                "unlock_url": f"{self.c.settings.issuer}/unlock?token={token}",
                "practice_name": practice.name if practice else "",
                "support_email": self.c.settings.support_email,
                "support_phone": self.c.settings.support_phone,
            },
        )

    def claim_step(self, user_pk: str, step: int) -> bool:
        """Record the time step as used; False when it was used before (RFC 6238 §5.2)."""
        key = self.c.keys("totp-used", user_pk, step)
        # Kept past the ±1 window so the step cannot come back within it.
        return bool(self.c.redis.set(key, b"1", nx=True, ex=totp.STEP_S * (2 * totp.WINDOW + 2)))


def _when(epoch: float) -> str:
    if epoch >= PERMANENT_UNTIL:
        return "an administrator or support unlocks it"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
