"""Validating access tokens issued by auth, for the services that accept them.

Two verifiers share one answer type, :class:`TokenInfo`:

- :class:`GrpcTokenVerifier` asks auth's ``TokenService`` (the default). Auth
  sees what a signature cannot: revoked tokens, ended sessions and suspended
  users. Answers are cached for at most one second, so a revocation reaches
  every caller within that second.
- :class:`JwksTokenVerifier` checks the signature locally against auth's
  published JWKS. It keeps working while auth is down but cannot see
  revocations or suspensions until the token expires (at most 5 minutes).

Neither ever answers "active" when it could not decide: when auth cannot be
reached they raise :class:`TokenServiceUnavailable`, which callers turn into a
503, never into data.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import requests
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import (
    BadSignatureError,
    DecodeError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidTokenError,
    JoseError,
    MissingAlgorithmError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from providercenter.auth.v1 import token_pb2, token_pb2_grpc
from services.common import grpc_util, tracing

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# Our access tokens are about a kilobyte; anything this large is not one of them,
# and sending it would only hit gRPC's message limit and look like an outage.
MAX_TOKEN_CHARS = 16 * 1024
# The design card's promise: a cached answer lives at most one second.
MAX_CACHE_TTL_S = 1.0


class TokenServiceUnavailable(Exception):
    """Auth could not be asked (down, too slow, or answering errors).

    Callers answer 503 and never treat the token as active or inactive: an
    outage must neither let anyone in nor sign everyone out.
    """


@dataclass(frozen=True)
class TokenInfo:
    """What auth says about one access token; ``reason`` is empty when active.

    ``reason`` is the name of a ``providercenter.auth.v1.InactiveReason``
    (``EXPIRED``, ``REVOKED``…). Times are seconds since the epoch.
    """

    active: bool
    reason: str = ""
    sub: str = ""
    practice_id: str = ""
    roles: tuple[str, ...] = ()
    scope: str = ""
    sid: str = ""
    exp: int = 0
    amr: tuple[str, ...] = ()
    client_id: str = ""
    acr: str = ""
    auth_time: int = 0
    name: str = ""
    practice_name: str = ""
    jti: str = ""

    @classmethod
    def inactive(cls, reason: str) -> TokenInfo:
        return cls(active=False, reason=reason)

    @classmethod
    def from_response(cls, response: token_pb2.ValidateTokenResponse) -> TokenInfo:
        if not response.active:
            return cls.inactive(token_pb2.InactiveReason.Name(response.reason))
        return cls(
            active=True,
            sub=response.sub,
            practice_id=response.practice_id,
            roles=tuple(response.roles),
            scope=response.scope,
            sid=response.sid,
            exp=response.exp,
            amr=tuple(response.amr),
            client_id=response.client_id,
            acr=response.acr,
            auth_time=response.auth_time,
            name=response.name,
            practice_name=response.practice_name,
            jti=response.jti,
        )

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


class TokenVerifier(Protocol):
    """Answers whether an access token is active for the caller's audience.

    ``verify`` returns an inactive :class:`TokenInfo` for any token that must
    not be accepted, and raises :class:`TokenServiceUnavailable` only when it
    could not decide. ``check_ready`` raises when the verifier cannot work
    (for ``/readyz``).
    """

    def verify(self, token: str) -> TokenInfo: ...

    def check_ready(self) -> None: ...


class _TokenServiceStub(Protocol):
    def ValidateToken(  # noqa: N802 - the generated stub's name
        self, request: token_pb2.ValidateTokenRequest, *, timeout: float
    ) -> token_pb2.ValidateTokenResponse: ...


class _AnswerCache:
    """A bounded LRU of answers, each with its own expiry; safe across threads.

    Keys are SHA-256 digests of tokens, so the process never keeps a usable
    token in memory longer than the request that carried it.
    """

    def __init__(self, size: int, clock: Clock) -> None:
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (stored_at, expires_at, answer)
        self._entries: OrderedDict[bytes, tuple[float, float, TokenInfo]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: bytes) -> TokenInfo | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, expires_at, answer = entry
            # A clock that went backwards (stored_at > now) must not stretch a lifetime.
            if not stored_at <= now < expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return answer

    def put(self, key: bytes, answer: TokenInfo, ttl_s: float) -> None:
        if self._size <= 0 or ttl_s <= 0:
            return
        now = self._clock()
        expires_at = now + ttl_s
        if answer.active:
            # Never say "active" past the token's own expiry.
            expires_at = min(expires_at, float(answer.exp))
        if expires_at <= now:
            return
        with self._lock:
            self._entries[key] = (now, expires_at, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class GrpcTokenVerifier:
    """Validates tokens through auth's ``TokenService.ValidateToken``.

    Every call carries a deadline of ``timeout_s``; a call that fails with
    ``UNAVAILABLE`` (connection refused, server restarting) or runs out of time
    (a process's first answer after it starts can be slow) is tried once more —
    checking a token changes nothing, so asking twice is safe — so the worst
    case is about ``2 * timeout_s``. Answers — active and inactive
    — are cached by token hash for ``cache_ttl_s`` (at most one second, and an
    active answer never beyond the token's ``exp``), in an LRU of
    ``cache_size`` entries. One instance is meant to be shared by all threads
    of a process; the channel is opened on first use, so creating the verifier
    before a fork (gunicorn) is harmless.
    """

    def __init__(
        self,
        address: str,
        audience: str,
        timeout_s: float = 0.5,
        cache_ttl_s: float = 1.0,
        cache_size: int = 10_000,
        *,
        clock: Clock = time.time,
        stub: _TokenServiceStub | None = None,
    ) -> None:
        if not audience:
            raise ValueError("audience must be set: auth checks the token's aud against it")
        if cache_ttl_s > MAX_CACHE_TTL_S:
            raise ValueError(
                f"cache_ttl_s must be at most {MAX_CACHE_TTL_S} s so revocations are seen quickly"
            )
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive: every gRPC call carries a deadline")
        self.address = address
        self.audience = audience
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self._cache = _AnswerCache(cache_size, clock)
        self._stub = stub
        self._channel: grpc.Channel | None = None
        self._channel_lock = threading.Lock()

    def _get_stub(self) -> _TokenServiceStub:
        if self._stub is None:
            with self._channel_lock:
                if self._stub is None:
                    self._channel = grpc_util.channel(self.address)
                    # Every call carries the caller's request id and traceparent as metadata.
                    self._stub = token_pb2_grpc.TokenServiceStub(tracing.propagating(self._channel))
        return self._stub

    def verify(self, token: str) -> TokenInfo:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return TokenInfo.inactive("MALFORMED")
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        answer = self._ask(token)
        self._cache.put(key, answer, self.cache_ttl_s)
        return answer

    def _ask(self, token: str) -> TokenInfo:
        request = token_pb2.ValidateTokenRequest(token=token, audience=self.audience)
        stub = self._get_stub()
        for attempt in (1, 2):
            try:
                return TokenInfo.from_response(stub.ValidateToken(request, timeout=self.timeout_s))
            except grpc.RpcError as exc:
                code = _status_code(exc)
                if code in RETRIED and attempt == 1:
                    continue
                if code is grpc.StatusCode.INVALID_ARGUMENT:
                    # Auth refused the request itself; whatever the cause, this token is not accepted.
                    log.warning("token service rejected the request", extra={"grpc_details": _details(exc)})
                    return TokenInfo.inactive("MALFORMED")
                log.warning(
                    "token service unavailable",
                    extra={
                        "grpc_code": code.name if code else None,
                        "grpc_details": _details(exc),
                        "address": self.address,
                    },
                )
                raise TokenServiceUnavailable(
                    f"auth TokenService at {self.address}: {code.name if code else 'error'}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def check_ready(self) -> None:
        """Raise :class:`TokenServiceUnavailable` unless auth's gRPC server reports SERVING."""
        self._get_stub()
        if self._channel is None:  # an injected stub: nothing to check
            return
        try:
            response = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self.timeout_s
            )
        except grpc.RpcError as exc:
            raise TokenServiceUnavailable(f"auth TokenService at {self.address}: not reachable") from exc
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            raise TokenServiceUnavailable(f"auth TokenService at {self.address}: not serving")

    def close(self) -> None:
        with self._channel_lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
                self._stub = None


def _status_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    return code() if callable(code) else None


def _details(exc: grpc.RpcError) -> str | None:
    details = getattr(exc, "details", None)
    return details() if callable(details) else None


# --- local validation with JWKS --------------------------------------------------------------


class _UnknownKey(Exception):
    pass


def _fetch_jwks(uri: str, timeout_s: float) -> Mapping[str, Any]:
    response = requests.get(uri, headers=tracing.outgoing_headers(), timeout=timeout_s)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("JWKS document has no keys list")
    return data


class JwksTokenVerifier:
    """Validates ES256 access tokens locally against auth's published JWKS.

    Checks the signature (ES256 only: ``none``, HMAC and every other algorithm
    are refused), ``iss``, ``aud`` (must contain ``audience``) and ``exp`` (plus
    ``nbf``/``iat`` not in the future, within ``leeway_s``).

    It CANNOT see revocations, ended sessions or suspended users: a token stays
    valid here until its ``exp`` (up to 5 minutes). Use it only where that is
    acceptable, and :class:`GrpcTokenVerifier` everywhere else.

    Keys are fetched on first use; a token naming an unknown ``kid`` causes a
    refetch (key rotation) at most once per ``refetch_interval_s``, so tokens
    with made-up ``kid`` values cannot turn into a flood of requests to auth.
    If the keys cannot be fetched at all, :class:`TokenServiceUnavailable`.
    """

    ALGORITHMS = ("ES256",)

    def __init__(
        self,
        issuer: str,
        jwks_uri: str,
        audience: str,
        *,
        timeout_s: float = 2.0,
        leeway_s: int = 5,
        refetch_interval_s: float = 30.0,
        clock: Clock = time.time,
        fetch_jwks: Callable[[str, float], Mapping[str, Any]] = _fetch_jwks,
    ) -> None:
        if not audience:
            raise ValueError("audience must be set")
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.audience = audience
        self.timeout_s = timeout_s
        self.leeway_s = leeway_s
        self.refetch_interval_s = refetch_interval_s
        self._clock = clock
        self._fetch = fetch_jwks
        self._jwt = JsonWebToken(list(self.ALGORITHMS))
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] | None = None
        self._fetched_at: float | None = None

    def _refresh_keys(self) -> None:
        # Counted from the attempt, not the success: an outage must not turn every
        # unknown kid into another request.
        self._fetched_at = self._clock()
        try:
            document = self._fetch(self.jwks_uri, self.timeout_s)
        except (requests.RequestException, ValueError) as exc:
            raise TokenServiceUnavailable(f"JWKS at {self.jwks_uri}: {type(exc).__name__}") from exc
        keys: dict[str, dict[str, Any]] = {}
        for jwk in document.get("keys", []):
            # Only P-256 signing keys can verify ES256; anything else is ignored.
            if (
                isinstance(jwk, dict)
                and jwk.get("kty") == "EC"
                and jwk.get("crv") == "P-256"
                and jwk.get("use", "sig") == "sig"
                and isinstance(jwk.get("kid"), str)
            ):
                keys[jwk["kid"]] = jwk
        self._keys = keys

    def _key_for(self, kid: object) -> Any:
        if not isinstance(kid, str) or not kid:
            raise _UnknownKey
        with self._lock:
            if self._keys is None:
                self._refresh_keys()
            assert self._keys is not None
            if kid not in self._keys:
                now = self._clock()
                if self._fetched_at is None or not (0 <= now - self._fetched_at < self.refetch_interval_s):
                    self._refresh_keys()
            jwk = self._keys.get(kid)
        if jwk is None:
            raise _UnknownKey
        return JsonWebKey.import_key(jwk)

    def verify(self, token: str) -> TokenInfo:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return TokenInfo.inactive("MALFORMED")
        options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        try:
            claims = self._jwt.decode(
                token, lambda header, _payload: self._key_for(header.get("kid")), claims_options=options
            )
            claims.validate(now=int(self._clock()), leeway=self.leeway_s)
        except _UnknownKey:
            return TokenInfo.inactive("UNKNOWN_KEY")
        except (MissingAlgorithmError, UnsupportedAlgorithmError):
            return TokenInfo.inactive("ALGORITHM_NOT_ALLOWED")
        except BadSignatureError:
            return TokenInfo.inactive("BAD_SIGNATURE")
        except (ExpiredTokenError, InvalidTokenError):
            return TokenInfo.inactive("EXPIRED")
        except MissingClaimError:
            return TokenInfo.inactive("MISSING_CLAIM")
        except InvalidClaimError as exc:
            return TokenInfo.inactive(
                {"iss": "WRONG_ISSUER", "aud": "WRONG_AUDIENCE"}.get(exc.claim_name, "MISSING_CLAIM")
            )
        except (DecodeError, JoseError, ValueError, TypeError, KeyError):
            return TokenInfo.inactive("MALFORMED")
        return _info_from_claims(claims)

    def check_ready(self) -> None:
        with self._lock:
            if not self._keys:
                self._refresh_keys()


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return ()


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _info_from_claims(claims: Mapping[str, Any]) -> TokenInfo:
    return TokenInfo(
        active=True,
        sub=str(claims.get("sub", "")),
        practice_id=str(claims.get("practice_id", "")),
        roles=_strings(claims.get("roles")),
        scope=str(claims.get("scope", "")),
        sid=str(claims.get("sid", "")),
        exp=_int(claims.get("exp")),
        amr=_strings(claims.get("amr")),
        client_id=str(claims.get("client_id") or claims.get("azp") or ""),
        acr=str(claims.get("acr", "")),
        auth_time=_int(claims.get("auth_time")),
        name=str(claims.get("name", "")),
        practice_name=str(claims.get("practice_name", "")),
        jti=str(claims.get("jti", "")),
    )
