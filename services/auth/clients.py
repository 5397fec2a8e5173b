"""OAuth clients: registration and the Authlib client interface.

Client secrets are long and random, so they are stored as HMAC-SHA-256 under a
configured key rather than with a slow hash (which would cap the token
endpoint at a few dozen requests a second for no gain).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.auth.store.models import Client
from services.common.db import utcnow

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
USER_SCOPES = ("openid", "profile", "email", "phone", "offline_access", "practice")


class ClientError(ValueError):
    """A client registration was refused; the message says why."""


def hash_secret(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


@dataclass
class OAuthClient(ClientMixin):
    """A registered client, as Authlib's grants and endpoints see it."""

    row: Client
    secret_key: bytes

    @property
    def client_id(self) -> str:
        return self.row.client_id

    @property
    def first_party(self) -> bool:
        return self.row.first_party

    @property
    def id_token_signed_response_alg(self) -> str:
        return "ES256"

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC requires redirect_uri on every request; never guess one.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(self.row.scopes)
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison (RFC 9700 §2.1): no prefixes, no normalisation.
        return redirect_uri in self.row.redirect_uris

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        return uri in self.row.post_logout_redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.row.secret_hash is None or not isinstance(client_secret, str):
            return False
        return hmac.compare_digest(self.row.secret_hash, hash_secret(self.secret_key, client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.row.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


def add_client(
    db: Session,
    secret_key: bytes,
    *,
    client_id: str,
    name: str | None = None,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    grant_types: list[str],
    scopes: list[str],
    audience: str | None,
    public: bool,
    first_party: bool,
    client_secret: str | None,
    replace: bool = False,
) -> tuple[Client, str | None]:
    """Register a client. Returns it and its secret (generated when none was given)."""
    if (
        not client_id
        or len(client_id) > 100
        or not client_id.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise ClientError("client id: letters, digits, '-', '_' and '.' only, at most 100 characters")
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown:
        raise ClientError(f"unsupported grant type: {', '.join(unknown)}")
    if public and "client_credentials" in grant_types:
        raise ClientError("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("authorization_code clients need at least one --redirect-uri")
    if "client_credentials" in grant_types and not audience:
        raise ClientError("client_credentials clients need --audience (the API their tokens are for)")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        if not (
            uri.startswith("https://")
            or uri.startswith("http://127.0.0.1")
            or uri.startswith("http://localhost")
        ):
            raise ClientError(f"redirect URI must be https (or loopback http): {uri}")
        if "#" in uri:
            raise ClientError(f"redirect URI must not have a fragment: {uri}")
    if public and client_secret:
        raise ClientError("a public client has no secret")
    secret = None if public else (client_secret or secrets.token_urlsafe(32))
    if secret is not None and len(secret) < 32:
        raise ClientError("client secret must be at least 32 characters")
    existing = db.get(Client, client_id)
    if existing is not None and not replace:
        raise ClientError(f"client {client_id} already exists")
    row = existing or Client(client_id=client_id, created_at=utcnow())
    row.name = name or client_id
    row.secret_hash = hash_secret(secret_key, secret) if secret else None
    row.public = public
    row.first_party = first_party
    row.redirect_uris = list(redirect_uris)
    row.post_logout_redirect_uris = list(post_logout_redirect_uris)
    row.grant_types = list(grant_types)
    row.scopes = list(scopes)
    row.audience = audience
    if existing is None:
        db.add(row)
    return row, secret


def list_clients(db: Session) -> list[Client]:
    return list(db.scalars(select(Client).order_by(Client.client_id)))


def remove_client(db: Session, client_id: str) -> None:
    row = db.get(Client, client_id)
    if row is None:
        raise ClientError(f"no client {client_id}")
    db.delete(row)
