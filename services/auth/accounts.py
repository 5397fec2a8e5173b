"""Account administration: suspend, reactivate, unlock, reset the second factor,
end sessions. Every change ends what it must (sessions, tokens) and is logged."""

from __future__ import annotations

from services.auth import directory, events, link_tokens, token_store
from services.auth.bootstrap import Container
from services.auth.store.models import RecoveryCode, User
from services.common.db import transaction


class AccountError(ValueError):
    """The change cannot be made; the message says why."""


def _end_everything(container: Container, db, user: User) -> int:  # type: ignore[no-untyped-def]
    """Sessions, tokens and outstanding emailed links (SECURITY.md E.24) all end."""
    link_tokens.void_all(db, user.id, ("reset", "unlock", "invite"))
    ended = container.sessions.end_all_for_user(user.id)
    token_store.revoke_user(db, container.revocation, user.id)
    return len(ended)


def apply(container: Container, action: str, user_id: str, *, actor: str) -> str:
    with transaction(container.db) as db:
        user = directory.find_user(db, user_id)
        if user is None:
            raise AccountError(f"no user {user_id}")
        details = {"actor": actor}
        if action == "suspend":
            if user.status == "suspended":
                raise AccountError(f"{user.user_id} is already suspended")
            user.status = "suspended"
            user.status_reason = "administrator"
            container.revocation.set_suspended(user.id, True)
            _end_everything(container, db, user)
            events.record(
                db, "account.suspended", user_id=user.user_id, practice_id=user.practice_id, details=details
            )
            return f"{user.user_id} suspended; sessions and tokens ended"
        if action == "reactivate":
            if user.status == "active":
                raise AccountError(f"{user.user_id} is already active")
            user.status = "active"
            user.status_reason = None
            container.revocation.set_suspended(user.id, False)
            events.record(
                db, "account.reactivated", user_id=user.user_id, practice_id=user.practice_id, details=details
            )
            return f"{user.user_id} reactivated"
        if action == "reset-mfa":
            user.totp_secret_enc = None
            user.totp_enrolled_at = None
            db.query(RecoveryCode).filter(RecoveryCode.user_pk == user.id).delete()
            _end_everything(container, db, user)
            events.record(
                db, "mfa.reset", user_id=user.user_id, practice_id=user.practice_id, details=details
            )
            return f"{user.user_id}: authenticator cleared; they will enrol again at next sign-in"
        if action == "unlock":
            from services.auth.lockout import unlock

            unlock(container, user.user_id)
            events.record(
                db, "account.unlocked", user_id=user.user_id, practice_id=user.practice_id, details=details
            )
            return f"{user.user_id} unlocked"
        raise AccountError(f"unknown action {action}")


def revoke_sessions(container: Container, *, user_id: str | None, sid: str | None) -> int:
    with transaction(container.db) as db:
        if sid:
            if container.sessions.end(sid) is None:
                raise AccountError(f"no session {sid}")
            token_store.revoke_session(db, container.revocation, sid)
            return 1
        user = directory.find_user(db, user_id or "")
        if user is None:
            raise AccountError(f"no user {user_id}")
        count = _end_everything(container, db, user)
        events.record(db, "sessions.revoked", user_id=user.user_id, practice_id=user.practice_id)
        return count


def suspend_inactive(container: Container, *, days: int) -> list[str]:
    """Suspend active accounts whose last sign-in (or creation, if never) is older than ``days``."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from services.common.db import utcnow

    cutoff = utcnow() - timedelta(days=days)
    suspended = []
    with transaction(container.db) as db:
        stale = db.scalars(
            select(User).where(
                User.status == "active", func.coalesce(User.last_sign_in_at, User.created_at) < cutoff
            )
        )
        for user in stale:
            user.status = "suspended"
            user.status_reason = f"inactive for {days} days"
            container.revocation.set_suspended(user.id, True)
            _end_everything(container, db, user)
            events.record(
                db,
                "account.suspended",
                user_id=user.user_id,
                practice_id=user.practice_id,
                reason="inactivity",
                details={"days": days, "actor": "suspend-inactive"},
            )
            suspended.append(user.user_id)
    return suspended
