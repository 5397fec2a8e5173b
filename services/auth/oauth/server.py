"""The authorization server: Authlib's Flask server with our grants, token
format and storage.

- authorization code + PKCE (S256 only; required of public clients, enforced
  whenever a challenge was sent) + OpenID Connect
- refresh tokens that rotate, with reuse detection
- client credentials for internal services, audience fixed at registration
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from sqlalchemy import select

from services.auth import metrics, token_store
from services.auth.clients import OAuthClient
from services.auth.oauth.codes import StoredCode, code_hash
from services.auth.oauth.principal import Principal
from services.auth.store.models import AuthorizationCode, Client, IssuedToken, Practice, User
from services.auth.tokens import unverified_claims
from services.common.db import transaction, utcnow

if TYPE_CHECKING:
    from services.auth.bootstrap import Container

# No "address" or "phone": the directory holds neither, so those scopes are not
# advertised and, like any scope not understood, ignored (OIDC Core §5.4).
CLIENT_CACHE_S = 5.0
SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access", "practice"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
# The second factor is always required, so only AAL2 is ever issued (and advertised).
ACR_AAL2 = "urn:providercenter:aal2"
ACR_AAL1 = "urn:providercenter:aal1"


def granted_scope(client: OAuthClient, requested: str | None) -> str:
    """What a user grant gets: the requested scopes the server supports and the
    client is registered for, in the order asked; the rest is ignored, and the
    token response's ``scope`` tells the client (RFC 6749 §3.3)."""
    allowed = set(client.row.scopes) & set(SCOPES_SUPPORTED)
    granted: list[str] = []
    for scope in (requested or "").split():
        if scope in allowed and scope not in granted:
            granted.append(scope)
    return " ".join(granted)


def load_principal(container: Container, user_pk: str, sid: str, grant_id: str = "") -> Principal | None:
    """The principal for a user in a live session, or None (session ended, user not active)."""
    session = container.sessions.get(sid)
    if session is None or session.user_pk != user_pk:
        return None
    with container.db() as db:
        user = db.get(User, user_pk)
        if user is None or user.status != "active":
            return None
        practice = db.get(Practice, user.practice_id)
        return Principal(
            user_pk=user.id,
            user_id=user.user_id,
            practice_id=user.practice_id,
            practice_name=practice.name if practice else "",
            name=user.name,
            email=user.email,
            roles=list(user.roles),
            sid=sid,
            auth_time=session.auth_time,
            amr=list(session.amr),
            acr=acr_for(session.amr),
            grant_id=grant_id,
        )


def acr_for(amr: list[str]) -> str:
    """Two factors make AAL2 in NIST SP 800-63 terms; a password alone would be AAL1."""
    return ACR_AAL2 if "otp" in amr or "rc" in amr else ACR_AAL1


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    @property
    def container(self) -> Container:
        return self.server.container  # type: ignore[attr-defined]

    def save_authorization_code(self, code: str, request: Any) -> None:
        principal: Principal = request.user
        payload = request.payload
        with transaction(self.container.db) as db:
            db.add(
                AuthorizationCode(
                    code_hash=code_hash(code),
                    grant_id=secrets.token_hex(16),
                    client_id=request.client.client_id,
                    user_pk=principal.user_pk,
                    redirect_uri=payload.redirect_uri,
                    scope=granted_scope(request.client, payload.scope),
                    nonce=payload.data.get("nonce"),
                    sid=principal.sid,
                    auth_time=principal.auth_time,
                    amr=principal.amr,
                    acr=principal.acr,
                    code_challenge=payload.data.get("code_challenge"),
                    code_challenge_method=payload.data.get("code_challenge_method"),
                    expires_at=utcnow() + timedelta(seconds=self.container.settings.code_ttl_s),
                )
            )

    def validate_requested_scope(self) -> None:
        # Not Authlib's check, which refuses any scope it does not know: OpenID
        # Connect asks that unknown scopes be ignored (Core §5.4); granted_scope
        # narrows the grant instead.
        return None

    def query_authorization_code(self, code: str, client: OAuthClient) -> StoredCode | None:
        """Claim the code; a second use revokes what the first issued (RFC 6749 §4.1.2)."""
        with transaction(self.container.db) as db:
            row = db.get(AuthorizationCode, code_hash(code))
            if row is None or row.client_id != client.client_id:
                return None
            if row.used_at is not None:
                token_store.revoke_grant(db, self.container.revocation, row.grant_id)
                return None
            row.used_at = utcnow()
            if row.expires_at <= utcnow():
                return None
            return StoredCode(row)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        # Already spent when claimed in query_authorization_code.
        pass

    def authenticate_user(self, authorization_code: StoredCode) -> Principal | None:
        row = authorization_code.row
        return load_principal(self.container, row.user_pk, row.sid, row.grant_id)


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def container(self) -> Container:
        return self.server.container  # type: ignore[attr-defined]

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefresh | None:
        client: OAuthClient = self.request.client
        with transaction(self.container.db) as db:
            # Only the client it was issued to may spend it: another client's attempt
            # must not burn it (which would make its owner's next use look like a replay).
            row, reused = token_store.claim_refresh(db, refresh_token, client.client_id)
            if row is None:
                return None
            if reused:
                token_store.revoke_grant(db, self.container.revocation, row.grant_id)
                return None
            if row.expires_at <= utcnow():
                return None
            return StoredRefresh(row)

    def authenticate_user(self, refresh_token: StoredRefresh) -> Principal:
        row = refresh_token.row
        assert row.user_pk is not None and row.sid is not None
        principal = load_principal(self.container, row.user_pk, row.sid, row.grant_id)
        if principal is None:
            # The session ended (or the user was suspended): the grant is over, which
            # RFC 6749 §5.2 calls invalid_grant (Authlib would say invalid_request).
            raise InvalidGrantError("the session this refresh token belongs to has ended")
        return principal

    def revoke_old_credential(self, refresh_token: StoredRefresh) -> None:
        # Rotation: the old token was marked used when it was claimed.
        pass


class StoredRefresh:
    def __init__(self, row: IssuedToken) -> None:
        self.row = row

    def check_client(self, client: OAuthClient) -> bool:
        return self.row.client_id == client.client_id

    def get_scope(self) -> str:
        return self.row.scope

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


class ServiceGrant(grants.ClientCredentialsGrant):
    """Service tokens: the scopes a client may ask for are fixed at registration."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self) -> None:
        requested = set((self.request.payload.scope or "").split())
        registered = set(self.request.client.row.scopes)
        if not requested <= registered:
            raise InvalidScopeError(
                description=f"not registered for: {' '.join(sorted(requested - registered))}"
            )


class S256Challenge(CodeChallenge):
    """PKCE with S256 only (``plain`` protects nothing against a leaked request),
    and required of public clients, which have no other proof at the token endpoint."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if challenge and method is None:
            # RFC 7636 §4.3 would read a missing method as "plain".
            raise InvalidRequestError("code_challenge_method must be S256")
        if not challenge and grant.request.client.row.public:
            raise InvalidRequestError("public clients must use PKCE (code_challenge with S256)")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDExtension(OpenIDCode):
    def __init__(self, container: Container) -> None:
        super().__init__(require_nonce=False)
        self.container = container

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False

    def get_jwt_config(self, grant: Any) -> dict:
        key = self.container.signing.current()
        return {
            "key": key.private,
            "alg": "ES256",
            "kid": key.kid,
            "iss": self.container.settings.issuer,
            "exp": self.container.settings.access_token_ttl_s,
        }

    def generate_user_info(self, user: Principal, scope: str) -> UserInfo:
        return UserInfo(user_claims(user, scope, include_sid=True))


def user_claims(user: Principal, scope: str, *, include_sid: bool = False) -> dict:
    """Claims shaped by scope (OIDC Core §5.4), for the ID token and UserInfo."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": user.user_pk}
    if include_sid:
        claims["sid"] = user.sid
    if "profile" in scopes:
        claims.update(name=user.name, preferred_username=user.user_id)
    if "email" in scopes:
        claims.update(email=user.email, email_verified=True)
    if "practice" in scopes:
        claims["https://providercenter.example/practice"] = {
            "practice_id": user.practice_id,
            "practice_name": user.practice_name,
            "roles": user.roles,
        }
    return claims


class ProviderServer(AuthorizationServer):
    """Authlib's server bound to our storage and token format."""

    def __init__(self, container: Container) -> None:
        super().__init__()
        self.container = container
        # Client registrations, cached briefly: every token request looks its client up,
        # and a changed or removed client takes effect within CLIENT_CACHE_S.
        self._clients: dict[str, tuple[float, Client | None]] = {}

    def query_client(self, client_id: str) -> OAuthClient | None:
        if not isinstance(client_id, str) or len(client_id) > 100:
            return None
        now = time.monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and now - cached[0] < CLIENT_CACHE_S:
            row = cached[1]
        else:
            with self.container.db() as db:
                row = db.get(Client, client_id)
            if len(self._clients) > 1000:
                self._clients.clear()
            self._clients[client_id] = (now, row)
        return OAuthClient(row, self.container.settings.client_secret_key) if row else None

    def save_token(self, token: dict, request: Any) -> None:
        principal: Principal | None = request.user if isinstance(request.user, Principal) else None
        client: OAuthClient = request.client
        if principal is None:
            # A service token (client_credentials) has no grant family, session or user to
            # revoke with; revoking it by jti goes to Redis without a row. Skipping the
            # write keeps the service-token path free of database work.
            metrics.TOKENS_ISSUED.labels(_grant_type(request)).inc()
            return
        claims = unverified_claims(token["access_token"])
        with transaction(self.container.db) as db:
            grant_id = principal.grant_id
            token_store.record_access(
                db,
                jti=claims["jti"],
                exp=claims["exp"],
                grant_id=grant_id,
                client_id=client.client_id,
                user_pk=principal.user_pk,
                sid=principal.sid,
                scope=token.get("scope", ""),
            )
            if token.get("refresh_token"):
                session = self.container.sessions.get(principal.sid)
                created = session.created if session else utcnow().timestamp()
                token_store.record_refresh(
                    db,
                    token=token["refresh_token"],
                    expires_at=token_store.refresh_expiry(
                        created,
                        self.container.settings.session_max_s,
                        self.container.settings.refresh_token_ttl_s,
                    ),
                    grant_id=grant_id,
                    client_id=client.client_id,
                    user_pk=principal.user_pk,
                    sid=principal.sid,
                    scope=token.get("scope", ""),
                )
        metrics.TOKENS_ISSUED.labels(_grant_type(request)).inc()

    def generate_access_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: Principal | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict:
        settings = self.container.settings
        scope = scope or ""
        if user is not None:
            access, _claims = self.container.access_tokens.issue(
                sub=user.user_pk,
                client_id=client.client_id,
                audience=[client.client_id],
                scope=scope,
                extra={
                    "sid": user.sid,
                    "practice_id": user.practice_id,
                    "roles": user.roles,
                    "amr": user.amr,
                    "acr": user.acr,
                    "auth_time": user.auth_time,
                },
            )
        else:
            # A service client that names no scope gets all it is registered for.
            scope = scope or " ".join(client.row.scopes)
            access, _claims = self.container.access_tokens.issue(
                sub=client.client_id,
                client_id=client.client_id,
                audience=[client.row.audience or client.client_id],
                scope=scope,
            )
        token = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": settings.access_token_ttl_s,
            "scope": scope,
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = token_store.new_refresh_token()
        return token


def build_server(app: Any, container: Container) -> ProviderServer:
    server = ProviderServer(container)
    app.config["OAUTH2_SCOPES_SUPPORTED"] = SCOPES_SUPPORTED
    server.init_app(app)
    server.register_token_generator("default", server.generate_access_token)
    server.register_grant(CodeGrant, [S256Challenge(required=True), OpenIDExtension(container)])
    server.register_grant(RefreshGrant)
    server.register_grant(ServiceGrant)
    return server


def client_by_id(container: Container, client_id: str) -> Client | None:
    with container.db() as db:
        return db.scalar(select(Client).where(Client.client_id == client_id))


_GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})


def _grant_type(request: Any) -> str:
    """The grant that issued a token, for the metric's label (a fixed set)."""
    payload = getattr(request, "payload", None)
    grant = getattr(payload, "grant_type", None) if payload is not None else None
    return grant if grant in _GRANT_TYPES else "other"
