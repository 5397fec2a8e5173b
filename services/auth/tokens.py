"""Access tokens: ES256 JWTs (RFC 9068 shape) issued and checked here.

The check is strict and says why a token fails: the header must name ES256
(never ``none``, never an HMAC algorithm whose "secret" could be our public
key) and a ``kid`` we hold; then signature, issuer, audience and time.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from authlib.jose import JsonWebSignature
from authlib.jose.errors import BadSignatureError, DecodeError, JoseError

from services.auth.keys import ALGORITHM, KeyStore

CLOCK_SKEW_S = 30
_JWS = JsonWebSignature(algorithms=[ALGORITHM])


class Inactive(Enum):
    """Why a token is not active; names match the proto's InactiveReason."""

    MALFORMED = "MALFORMED"
    ALGORITHM_NOT_ALLOWED = "ALGORITHM_NOT_ALLOWED"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    WRONG_ISSUER = "WRONG_ISSUER"
    WRONG_AUDIENCE = "WRONG_AUDIENCE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    USER_SUSPENDED = "USER_SUSPENDED"
    MISSING_CLAIM = "MISSING_CLAIM"


class TokenInvalid(Exception):
    def __init__(self, reason: Inactive) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class AccessClaims:
    """What an access token says; ``claims`` keeps every claim for introspection."""

    sub: str
    client_id: str
    scope: str
    exp: int
    iat: int
    jti: str
    aud: list[str]
    sid: str = ""
    practice_id: str = ""
    roles: list[str] = field(default_factory=list)
    amr: list[str] = field(default_factory=list)
    acr: str = ""
    auth_time: int = 0
    claims: dict = field(default_factory=dict)


REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope")


class AccessTokens:
    def __init__(self, keys: KeyStore, issuer: str, ttl_s: int) -> None:
        self._keys = keys
        self.issuer = issuer
        self.ttl_s = ttl_s

    def issue(
        self,
        *,
        sub: str,
        client_id: str,
        audience: Iterable[str],
        scope: str,
        extra: dict | None = None,
        now: int | None = None,
    ) -> tuple[str, dict]:
        """A signed access token and its claims."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": list(audience),
            "exp": issued + self.ttl_s,
            "iat": issued,
            "nbf": issued,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": scope,
            **(extra or {}),
        }
        key = self._keys.current()
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
        token = _JWS.serialize_compact(header, json.dumps(claims, separators=(",", ":")), key.private)
        return token.decode(), claims

    def verify(self, token: str, audience: str | None, now: float | None = None) -> AccessClaims:
        """The token's claims, or :class:`TokenInvalid` naming the first check it failed.

        ``audience=None`` skips the audience check: only for auth's own endpoints
        (UserInfo, introspection), which accept tokens issued for any client.
        """
        now = time.time() if now is None else now
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid(Inactive.ALGORITHM_NOT_ALLOWED)
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) and len(kid) <= 100 else None
        if key is None:
            raise TokenInvalid(Inactive.UNKNOWN_KEY)
        try:
            data = _JWS.deserialize_compact(token, key.private)
        except BadSignatureError as exc:
            raise TokenInvalid(Inactive.BAD_SIGNATURE) from exc
        except (DecodeError, JoseError, ValueError) as exc:
            raise TokenInvalid(Inactive.MALFORMED) from exc
        try:
            claims = json.loads(data["payload"])
        except (ValueError, TypeError) as exc:
            raise TokenInvalid(Inactive.MALFORMED) from exc
        if not isinstance(claims, dict):
            raise TokenInvalid(Inactive.MALFORMED)
        if any(name not in claims for name in REQUIRED):
            raise TokenInvalid(Inactive.MISSING_CLAIM)
        if claims["iss"] != self.issuer:
            raise TokenInvalid(Inactive.WRONG_ISSUER)
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if audience is not None and audience not in aud:
            raise TokenInvalid(Inactive.WRONG_AUDIENCE)
        try:
            exp, iat = int(claims["exp"]), int(claims["iat"])
        except (TypeError, ValueError) as exc:
            raise TokenInvalid(Inactive.MALFORMED) from exc
        if exp <= now or iat > now + CLOCK_SKEW_S:
            raise TokenInvalid(Inactive.EXPIRED)
        return AccessClaims(
            sub=str(claims["sub"]),
            client_id=str(claims["client_id"]),
            scope=str(claims["scope"]),
            exp=exp,
            iat=iat,
            jti=str(claims["jti"]),
            aud=[str(a) for a in aud],
            sid=str(claims.get("sid", "")),
            practice_id=str(claims.get("practice_id", "")),
            roles=[str(r) for r in claims.get("roles", [])],
            amr=[str(a) for a in claims.get("amr", [])],
            acr=str(claims.get("acr", "")),
            auth_time=int(claims.get("auth_time", 0) or 0),
            claims=claims,
        )


def _header(token: str) -> dict:
    if not isinstance(token, str) or len(token) > 8192 or token.count(".") != 2:
        raise TokenInvalid(Inactive.MALFORMED)
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, TypeError) as exc:
        raise TokenInvalid(Inactive.MALFORMED) from exc
    if not isinstance(header, dict):
        raise TokenInvalid(Inactive.MALFORMED)
    return header


def unverified_claims(token: str) -> dict:
    """The payload of a token we just made ourselves (never use on input)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
