"""Changing credentials: a new password (policy-checked) or a new authenticator.

Every change voids outstanding reset and unlock links, is logged, and emails
the owner, so a change they did not make does not go unnoticed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from services.auth import events, link_tokens, outbox, password_policy, recovery_codes
from services.auth.bootstrap import Container
from services.auth.directory import set_totp
from services.auth.events import Origin
from services.auth.password_policy import PolicyViolation
from services.auth.store.models import Practice, User
from services.common.db import utcnow


def policy_violation(container: Container, db: Session, user: User, password: str) -> PolicyViolation | None:
    practice = db.get(Practice, user.practice_id)
    return password_policy.check(
        password,
        min_length=container.settings.password_min_length,
        user_id=user.user_id,
        name=user.name,
        practice_name=practice.name if practice else "",
    )


def set_password(
    container: Container, db: Session, user: User, new_password: str, *, origin: Origin | None, reason: str
) -> PolicyViolation | None:
    """Set a new password if the policy allows; None on success."""
    violation = policy_violation(container, db, user, new_password)
    if violation is not None:
        return violation
    user.password_hash = container.passwords.hash(password_policy.normalise(new_password))
    user.password_changed_at = utcnow()
    link_tokens.void_all(db, user.id)
    events.record(
        db,
        "password.changed",
        user_id=user.user_id,
        practice_id=user.practice_id,
        origin=origin,
        details={"via": reason},
    )
    _notify(container, db, user, "password_changed")
    return None


def enroll_totp(
    container: Container, db: Session, user: User, secret: str, *, origin: Origin | None
) -> list[str]:
    """Activate a confirmed authenticator and issue a fresh set of recovery codes (shown once)."""
    set_totp(user, container.secret_box, secret)
    codes = recovery_codes.issue(db, container.settings.totp_key, user.id)
    events.record(db, "mfa.enrolled", user_id=user.user_id, practice_id=user.practice_id, origin=origin)
    _notify(container, db, user, "mfa_changed")
    return codes


def _notify(container: Container, db: Session, user: User, template: str) -> None:
    practice = db.get(Practice, user.practice_id)
    outbox.enqueue(
        db,
        template,
        user.email,
        {
            "name": user.name,
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "practice_name": practice.name if practice else "",
            "support_email": container.settings.support_email,
            "support_phone": container.settings.support_phone,
        },
    )
