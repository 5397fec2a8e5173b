"""Account recovery by email: forgotten User ID, forgotten password.

Recovery is the favourite door of attackers, so:

- the answer is the same whether or not an address or User ID exists (and
  the work nearly so: both paths write an event; measured in ``make bench``);
- the email goes through auth's outbox (written in the same transaction),
  never from the request;
- reset links carry a single-use token (link_tokens.py): 256 random bits,
  stored hashed, 30 minutes, void on use, on a newer link, on a password change;
- a reset revokes every session and refresh token of the user, clears the
  password lockout (the email proved ownership) but not second-factor
  failures nor the address throttle, emails "your password was changed", and
  never bypasses the second factor: the next sign-in asks for it;
- requests are throttled per client address and per submitted identifier.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import Enum

import redis
from sqlalchemy import select

from services.auth import credentials, directory, events, link_tokens, outbox, token_store
from services.auth.bootstrap import Container
from services.auth.events import Origin
from services.auth.password_policy import PolicyViolation
from services.auth.store.models import Practice, User
from services.common.db import transaction

# One sliding-window counter per key (sorted set of request times).
_HIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], window)
return 0
"""


class Answer(Enum):
    ACCEPTED = "accepted"  # the same for known and unknown identifiers
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class RecoveryAnswer:
    answer: Answer
    retry_after_s: int = 0


class Recovery:
    def __init__(self, container: Container) -> None:
        self.c = container
        self._hit = container.redis.register_script(_HIT)

    def _throttle(self, kind: str, identifier: str, address: str) -> RecoveryAnswer | None:
        s = self.c.settings
        ident = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]
        now = time.time()
        try:
            for key, limit in (
                (self.c.keys("recovery", "addr", address), s.recovery_per_address),
                (self.c.keys("recovery", kind, ident), s.recovery_per_account),
            ):
                retry = int(
                    self._hit(keys=[key], args=[now, s.recovery_window_s, limit, secrets.token_hex(8)])
                )
                if retry:
                    return RecoveryAnswer(Answer.THROTTLED, retry)
        except redis.RedisError:
            return RecoveryAnswer(Answer.UNAVAILABLE)
        return None

    def _common_params(self, practice: Practice | None) -> dict[str, str]:
        return {
            "practice_name": practice.name if practice else "",
            "support_email": self.c.settings.support_email,
            "support_phone": self.c.settings.support_phone,
        }

    def forgot_user_id(self, email: str, origin: Origin) -> RecoveryAnswer:
        """Email the address the User IDs registered to it, with their practices."""
        email = email.strip()[:254]
        refused = self._throttle("email", email, origin.ip)
        if refused:
            return refused
        with transaction(self.c.db) as db:
            users = [u for u in directory.users_by_email(db, email) if u.status == "active"]
            events.record(
                db,
                "recovery.user_id_requested",
                user_id=None,
                origin=origin,
                details={"matched": len(users)},
            )
            if users:
                names = {
                    p.practice_id: p.name
                    for p in db.scalars(
                        select(Practice).where(Practice.practice_id.in_({u.practice_id for u in users}))
                    )
                }
                lines = "\n".join(f"{u.user_id} — {names.get(u.practice_id, u.practice_id)}" for u in users)
                params = {"user_ids": lines, "name": users[0].name, **self._common_params(None)}
                outbox.enqueue(db, "user_id_reminder", users[0].email, params)
        return RecoveryAnswer(Answer.ACCEPTED)

    def forgot_password(self, user_id: str, email: str, origin: Origin) -> RecoveryAnswer:
        """Email a reset link when the User ID and the address on file both match."""
        submitted = directory.normalise_user_id(user_id)[:64]
        refused = self._throttle("user", submitted, origin.ip)
        if refused:
            return refused
        with transaction(self.c.db) as db:
            user = directory.find_user(db, submitted)
            matches = (
                user is not None
                and user.status == "active"
                and user.email.strip().lower() == email.strip().lower()
            )
            events.record(
                db,
                "recovery.password_requested",
                user_id=submitted,
                origin=origin,
                practice_id=user.practice_id if user else None,
                outcome="ok" if matches else "no_match",
            )
            if matches and user is not None:
                token = link_tokens.issue(db, user.id, "reset")
                practice = db.get(Practice, user.practice_id)
                outbox.enqueue(
                    db,
                    "password_reset",
                    user.email,
                    {
                        "name": user.name,
                        "reset_url": f"{self.c.settings.issuer}/reset-password?token={token}",
                        "expires_minutes": str(link_tokens.LIFETIMES_S["reset"] // 60),
                        **self._common_params(practice),
                    },
                )
        return RecoveryAnswer(Answer.ACCEPTED)

    def reset_target(self, token: str) -> User | None:
        """The active user a live reset link is for (to show the form), without using it."""
        with self.c.db() as db:
            user_pk = link_tokens.peek(db, token, "reset")
            user = db.get(User, user_pk) if user_pk else None
            # The same rule as reset_password: a suspended account's link opens no form.
            return user if user is not None and user.status == "active" else None

    def reset_password(self, token: str, new_password: str, origin: Origin) -> PolicyViolation | User | None:
        """Set the new password through a reset link.

        Returns the user on success, the policy violation (link not used up)
        when the password is refused, or None when the link is not valid.
        """
        with transaction(self.c.db) as db:
            user_pk = link_tokens.peek(db, token, "reset")
            user = db.get(User, user_pk) if user_pk else None
            if user is None or user.status != "active":
                return None
            violation = credentials.policy_violation(self.c, db, user, new_password)
            if violation is not None:
                return violation
            if link_tokens.consume(db, token, "reset") is None:
                return None
            credentials.set_password(self.c, db, user, new_password, origin=origin, reason="reset")
            for sid in self.c.sessions.end_all_for_user(user.id):
                token_store.revoke_session(db, self.c.revocation, sid)
            token_store.revoke_user(db, self.c.revocation, user.id)
            self.c.lockout.clear_password_failures(user.user_id)
            return user
