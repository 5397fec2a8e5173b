"""The practice directory and its staff users: who exists and to which practice they belong."""

from __future__ import annotations

import base64
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.auth.passwords import Passwords
from services.auth.store.models import Practice, User
from services.auth.totp import SecretBox
from services.common.db import utcnow

ROLES = ("admin", "manager", "front_desk", "read_only")
_USER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_PRACTICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class DirectoryError(ValueError):
    """A directory change was refused; the message says why."""


def add_practice(db: Session, practice_id: str, name: str) -> Practice:
    if not _PRACTICE_ID.match(practice_id):
        raise DirectoryError("practice id: lower-case letters, digits and '-', 2 to 64 characters")
    if not name.strip() or len(name) > 200:
        raise DirectoryError("practice name: 1 to 200 characters")
    practice = db.get(Practice, practice_id)
    if practice is None:
        practice = Practice(practice_id=practice_id, name=name.strip(), created_at=utcnow())
        db.add(practice)
    else:
        practice.name = name.strip()
    return practice


def normalise_user_id(user_id: str) -> str:
    return user_id.strip().lower()


def find_user(db: Session, user_id: str) -> User | None:
    return db.scalar(select(User).where(User.user_id == normalise_user_id(user_id)))


def users_by_email(db: Session, email: str) -> list[User]:
    return list(db.scalars(select(User).where(func.lower(User.email) == email.strip().lower())))


def add_user(
    db: Session,
    passwords: Passwords,
    box: SecretBox,
    *,
    practice_id: str,
    user_id: str,
    email: str,
    name: str,
    password: str | None,
    totp_secret: str | None,
    roles: list[str],
) -> User:
    user_id = normalise_user_id(user_id)
    if not _USER_ID.match(user_id):
        raise DirectoryError("User ID: 3 to 64 characters: letters, digits, '.', '_' and '-'")
    if db.get(Practice, practice_id) is None:
        raise DirectoryError(f"no practice {practice_id}")
    if find_user(db, user_id) is not None:
        raise DirectoryError(f"User ID {user_id} is taken")
    if not _EMAIL.match(email):
        raise DirectoryError(f"not an email address: {email}")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise DirectoryError(f"unknown role {', '.join(bad)} (roles: {', '.join(ROLES)})")
    now = utcnow()
    user = User(
        user_id=user_id,
        practice_id=practice_id,
        email=email.strip(),
        name=name.strip() or user_id,
        roles=roles,
        status="active",
        created_at=now,
        password_hash=passwords.hash(password) if password else None,
        password_changed_at=now if password else None,
    )
    db.add(user)
    db.flush()  # assigns the primary key the TOTP ciphertext is bound to
    if totp_secret:
        set_totp(user, box, totp_secret)
    return user


def set_totp(user: User, box: SecretBox, secret: str) -> None:
    cleaned = secret.replace(" ", "").upper()
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError as exc:
        raise DirectoryError("TOTP secret must be base32") from exc
    if len(raw) < 10:
        raise DirectoryError("TOTP secret must be at least 80 bits")
    user.totp_secret_enc = box.seal(cleaned, user.id)
    user.totp_enrolled_at = utcnow()
