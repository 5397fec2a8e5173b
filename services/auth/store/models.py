"""The auth service's tables: its directory of practices and staff, OAuth
clients, signing keys, codes and tokens, the security event log, and the
outbox of emails it wants sent."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UtcDateTime


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict: JSON, list: JSON}


class Practice(Base):
    __tablename__ = "practices"

    practice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    support_email: Mapped[str] = mapped_column(String(254), default="support@providercenter.example")
    support_phone: Mapped[str] = mapped_column(String(40), default="1-800-555-0199")
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # The User ID people type; stored lower-case so sign-in is case-insensitive.
    user_id: Mapped[str] = mapped_column(String(64), unique=True)
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.practice_id"))
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # AES-GCM ciphertext of the base32 TOTP secret (see totp.py); None until enrolled.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enrolled_at: Mapped[datetime | None]
    roles: Mapped[list] = mapped_column(default=list)
    # active | suspended | disabled. "locked" is not stored here: it lives in Redis.
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_pk: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    used_at: Mapped[datetime | None]


class Client(Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # HMAC-SHA-256 of the secret under the configured key; None for public clients.
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(default=list)
    grant_types: Mapped[list] = mapped_column(default=list)
    scopes: Mapped[list] = mapped_column(default=list)
    # The API audience of client_credentials tokens; user tokens name the client itself.
    audience: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # The newest key not retired signs; retired keys stay in JWKS until their tokens expire.
    retired_at: Mapped[datetime | None]


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(32), default=new_id)
    client_id: Mapped[str] = mapped_column(String(100))
    user_pk: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    sid: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list] = mapped_column(default=list)
    acr: Mapped[str | None] = mapped_column(String(100))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class IssuedToken(Base):
    """Every token issued, by grant, so a grant can be revoked as a whole.

    Refresh tokens are stored as SHA-256 hashes; access tokens (JWTs) only by
    ``jti``, so revoking them means telling Redis until they expire.
    """

    __tablename__ = "issued_tokens"
    __table_args__ = (Index("ix_issued_tokens_grant", "grant_id"), Index("ix_issued_tokens_sid", "sid"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # jti, or refresh-token hash
    kind: Mapped[str] = mapped_column(String(16))  # access | refresh
    grant_id: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(100))
    user_pk: Mapped[str | None] = mapped_column(String(32), index=True)
    sid: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]  # refresh tokens: rotated
    revoked_at: Mapped[datetime | None]


class SecurityEvent(Base):
    __tablename__ = "security_events"
    __table_args__ = (Index("ix_security_events_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))  # as submitted, lower-cased
    practice_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    reason: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict] = mapped_column(default=dict)


class OutboxMessage(Base):
    """An email auth wants sent, written in the same transaction as its cause
    and relayed to notify with its id as the idempotency key."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "relayed_at", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    template: Mapped[str] = mapped_column(String(64))
    to: Mapped[str] = mapped_column(String(254))
    params: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    relayed_at: Mapped[datetime | None]
    notify_message_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The request that wrote the row, so the relay's call to notify continues its trace.
    request_id: Mapped[str | None] = mapped_column(String(64))
    traceparent: Mapped[str | None] = mapped_column(String(64))


class Consent(Base):
    """A user's consent to a third-party client for some scopes; revocable."""

    __tablename__ = "consents"

    user_pk: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scopes: Mapped[list] = mapped_column(default=list)
    granted_at: Mapped[datetime]


class RecoveryToken(Base):
    """A single-use emailed link token (password reset, unlock, invitation),
    stored only as its SHA-256 hash."""

    __tablename__ = "recovery_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_pk: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # reset | unlock | invite
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MfaResetRequest(Base):
    """A second-factor reset one administrator asked for and a second must approve."""

    __tablename__ = "mfa_reset_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    practice_id: Mapped[str] = mapped_column(String(64), index=True)
    user_pk: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(String(32))
    done_at: Mapped[datetime | None]
