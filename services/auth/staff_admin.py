"""Staff administration by a practice's own administrators (UserAdminService).

Auth checks every call itself: the actor comes from a validated access token
(never from the request), must be an active ``admin``, and can only see or
change users of the practice in that token. Anyone else's users do not exist
(NotFound), so a portal bug or a forged request cannot cross practices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.auth import accounts, directory, events, link_tokens, outbox, token_store
from services.auth.bootstrap import Container
from services.auth.store.models import MfaResetRequest, Practice, RecoveryCode, SecurityEvent, User
from services.auth.tokens import TokenInvalid
from services.common.db import transaction, utcnow


class AdminError(Exception):
    """Base of the refusals; each maps to one gRPC status."""


class Unauthenticated(AdminError):
    pass


class Forbidden(AdminError):
    pass


class NotFound(AdminError):
    pass


class Invalid(AdminError):
    pass


class Conflict(AdminError):
    pass


class Precondition(AdminError):
    pass


@dataclass(frozen=True)
class Actor:
    user_pk: str
    user_id: str
    practice_id: str


def authenticate(container: Container, token: str, audiences: tuple[str, ...]) -> Actor:
    """The acting administrator, from their access token (signature, audience, revocation, status)."""
    claims = None
    for audience in audiences:
        try:
            claims = container.access_tokens.verify(token, audience)
            break
        except TokenInvalid:
            continue
    if claims is None or not claims.sid:
        raise Unauthenticated("a valid user access token is required")
    if container.revocation.check(jti=claims.jti, sid=claims.sid, user_pk=claims.sub) is not None:
        raise Unauthenticated("the access token is no longer active")
    with container.db() as db:
        user = db.get(User, claims.sub)
        if user is None or user.status != "active" or user.practice_id != claims.practice_id:
            raise Unauthenticated("the access token is no longer active")
        if "admin" not in user.roles:
            raise Forbidden("only an account administrator can manage staff")
        return Actor(user.id, user.user_id, user.practice_id)


def _target(db: Session, actor: Actor, user_id: str) -> User:
    user = directory.find_user(db, user_id or "")
    if user is None or user.practice_id != actor.practice_id:
        raise NotFound(f"no user {user_id!r} in your practice")
    return user


def _audit(db: Session, actor: Actor, event: str, target: User, **details: object) -> None:
    events.record(
        db,
        event,
        user_id=target.user_id,
        practice_id=target.practice_id,
        details={"actor": actor.user_id, **details},
    )


@dataclass(frozen=True)
class StaffView:
    user_id: str
    name: str
    email: str
    roles: list[str]
    status: str
    locked: bool
    mfa_enrolled: bool
    created_at: int
    last_sign_in_at: int


def view(container: Container, user: User) -> StaffView:
    try:
        locked_until = container.lockout.locked_until(user.user_id, None)
    except Exception:  # noqa: BLE001 - the lock flag is informative; Redis trouble must not hide the user
        locked_until = None
    return StaffView(
        user_id=user.user_id,
        name=user.name,
        email=user.email,
        roles=list(user.roles),
        status=user.status,
        locked=bool(locked_until and locked_until > datetime.now(UTC).timestamp()),
        mfa_enrolled=user.totp_enrolled_at is not None,
        created_at=int(user.created_at.timestamp()),
        last_sign_in_at=int(user.last_sign_in_at.timestamp()) if user.last_sign_in_at else 0,
    )


class StaffAdmin:
    def __init__(self, container: Container, actor: Actor) -> None:
        self.c = container
        self.actor = actor

    def list_users(self, query: str, limit: int, offset: int) -> tuple[list[StaffView], int]:
        limit = 50 if limit <= 0 else min(limit, 200)
        offset = max(0, offset)
        with self.c.db() as db:
            where = [User.practice_id == self.actor.practice_id]
            if query.strip():
                pattern = f"%{query.strip().lower()[:100]}%"
                where.append(
                    or_(
                        User.user_id.like(pattern),
                        func.lower(User.name).like(pattern),
                        func.lower(User.email).like(pattern),
                    )
                )
            total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
            users = list(
                db.scalars(select(User).where(*where).order_by(User.user_id).limit(limit).offset(offset))
            )
            return [view(self.c, u) for u in users], int(total)

    def get(self, user_id: str) -> StaffView:
        with self.c.db() as db:
            return view(self.c, _target(db, self.actor, user_id))

    def invite(self, user_id: str, email: str, name: str, roles: list[str]) -> StaffView:
        if not roles:
            raise Invalid("give the new user at least one role")
        with transaction(self.c.db) as db:
            if directory.find_user(db, user_id) is not None:
                raise Conflict(f"User ID {user_id.lower()} is taken")
            try:
                user = directory.add_user(
                    db,
                    self.c.passwords,
                    self.c.secret_box,
                    practice_id=self.actor.practice_id,
                    user_id=user_id,
                    email=email,
                    name=name,
                    password=None,
                    totp_secret=None,
                    roles=roles,
                )
            except directory.DirectoryError as exc:
                raise Invalid(str(exc)) from exc
            user.status = "invited"
            token = link_tokens.issue(db, user.id, "invite")
            practice = db.get(Practice, user.practice_id)
            outbox.enqueue(
                db,
                "invitation",
                user.email,
                {
                    "name": user.name,
                    "practice_name": practice.name if practice else "",
                    "invite_url": f"{self.c.settings.issuer}/invite?token={token}",
                    "expires_hours": str(link_tokens.LIFETIMES_S["invite"] // 3600),
                    "support_email": self.c.settings.support_email,
                    "support_phone": self.c.settings.support_phone,
                },
            )
            _audit(db, self.actor, "staff.invited", user, roles=roles)
            return view(self.c, user)

    def set_roles(self, user_id: str, roles: list[str]) -> StaffView:
        bad = [r for r in roles if r not in directory.ROLES]
        if not roles or bad:
            raise Invalid(f"roles must be some of {', '.join(directory.ROLES)}")
        with transaction(self.c.db) as db:
            user = _target(db, self.actor, user_id)
            if user.id == self.actor.user_pk and "admin" not in roles:
                raise Forbidden("you cannot remove your own administrator role")
            before = list(user.roles)
            user.roles = sorted(set(roles))
            # Tokens carry roles: end the user's sessions so new roles apply at once.
            for sid in self.c.sessions.end_all_for_user(user.id):
                token_store.revoke_session(db, self.c.revocation, sid)
            _audit(db, self.actor, "staff.roles_changed", user, before=before, after=user.roles)
            return view(self.c, user)

    def _status_change(self, user_id: str, action: str) -> StaffView:
        with transaction(self.c.db) as db:
            user = _target(db, self.actor, user_id)
            if user.id == self.actor.user_pk and action == "suspend":
                raise Forbidden("you cannot suspend yourself")
            target_id = user.user_id
        try:
            accounts.apply(self.c, action, target_id, actor=self.actor.user_id)
        except accounts.AccountError as exc:
            raise Precondition(str(exc)) from exc
        return self.get(target_id)

    def suspend(self, user_id: str) -> StaffView:
        return self._status_change(user_id, "suspend")

    def reactivate(self, user_id: str) -> StaffView:
        return self._status_change(user_id, "reactivate")

    def unlock(self, user_id: str) -> StaffView:
        return self._status_change(user_id, "unlock")

    def _active_admins(self, db: Session) -> int:
        users = db.scalars(
            select(User).where(User.practice_id == self.actor.practice_id, User.status == "active")
        )
        return sum(1 for u in users if "admin" in u.roles)

    def reset_mfa(self, user_id: str) -> tuple[str, str, StaffView]:
        """Reset at once with one administrator; with two or more, ask for a second approval."""
        with transaction(self.c.db) as db:
            user = _target(db, self.actor, user_id)
            if self._active_admins(db) < 2:
                self._do_reset(db, user, approved_by=None)
                return "done", "", view(self.c, user)
            pending = db.scalar(
                select(MfaResetRequest).where(
                    MfaResetRequest.user_pk == user.id, MfaResetRequest.done_at.is_(None)
                )
            )
            if pending is None:
                pending = MfaResetRequest(
                    practice_id=user.practice_id,
                    user_pk=user.id,
                    requested_by=self.actor.user_pk,
                    requested_at=utcnow(),
                )
                db.add(pending)
                db.flush()
                _audit(db, self.actor, "mfa.reset_requested", user)
            return "pending", pending.id, view(self.c, user)

    def approve_mfa_reset(self, request_id: str) -> tuple[str, str, StaffView]:
        with transaction(self.c.db) as db:
            pending = db.get(MfaResetRequest, request_id or "")
            if (
                pending is None
                or pending.practice_id != self.actor.practice_id
                or pending.done_at is not None
            ):
                raise NotFound("no such pending reset request in your practice")
            if pending.requested_by == self.actor.user_pk:
                raise Precondition("a second administrator must approve this reset")
            user = db.get(User, pending.user_pk)
            assert user is not None
            if user.id == self.actor.user_pk:
                raise Precondition("another administrator must approve a reset of your own authenticator")
            pending.approved_by = self.actor.user_pk
            pending.done_at = utcnow()
            self._do_reset(db, user, approved_by=self.actor.user_id)
            return "done", pending.id, view(self.c, user)

    def _do_reset(self, db: Session, user: User, *, approved_by: str | None) -> None:
        user.totp_secret_enc = None
        user.totp_enrolled_at = None
        db.query(RecoveryCode).filter(RecoveryCode.user_pk == user.id).delete()
        for sid in self.c.sessions.end_all_for_user(user.id):
            token_store.revoke_session(db, self.c.revocation, sid)
        _audit(db, self.actor, "mfa.reset", user, approved_by=approved_by)

    def pending_resets(self) -> list[tuple[str, str, str, int]]:
        with self.c.db() as db:
            rows = db.execute(
                select(MfaResetRequest, User)
                .join(User, User.id == MfaResetRequest.user_pk)
                .where(
                    MfaResetRequest.practice_id == self.actor.practice_id, MfaResetRequest.done_at.is_(None)
                )
            )
            result = []
            for request, user in rows:
                requester = db.get(User, request.requested_by)
                result.append(
                    (
                        request.id,
                        user.user_id,
                        requester.user_id if requester else "",
                        int(request.requested_at.timestamp()),
                    )
                )
            return result

    def activity(self, user_id: str, limit: int) -> list[SecurityEvent]:
        limit = 50 if limit <= 0 else min(limit, 200)
        with self.c.db() as db:
            user = _target(db, self.actor, user_id)
            return events.recent(db, user_id=user.user_id, limit=limit)
