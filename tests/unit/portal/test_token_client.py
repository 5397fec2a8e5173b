"""The token client library: cache bounds, lifetimes and error mapping (no network).

services/common/token_client.py is shared by every service; its tests live with
the portal, its first user.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import grpc
import pytest
from authlib.jose import JsonWebKey, JsonWebToken

from providercenter.auth.v1 import token_pb2
from services.common.token_client import (
    GrpcTokenVerifier,
    JwksTokenVerifier,
    TokenInfo,
    TokenServiceUnavailable,
)
from tests.unit.portal.fakes import FakeClock


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__()
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name


class FakeStub:
    """Answers ValidateToken: active until ``exp`` unless told otherwise; can fail on cue."""

    def __init__(self, exp: int = 2_000_000_000) -> None:
        self.exp = exp
        self.calls: list[tuple[str, str, float]] = []
        self.failures: list[grpc.StatusCode] = []
        self.inactive: dict[str, int] = {}

    def ValidateToken(  # noqa: N802
        self, request: token_pb2.ValidateTokenRequest, *, timeout: float
    ) -> token_pb2.ValidateTokenResponse:
        self.calls.append((request.token, request.audience, timeout))
        if self.failures:
            raise FakeRpcError(self.failures.pop(0))
        if request.token in self.inactive:
            return token_pb2.ValidateTokenResponse(active=False, reason=self.inactive[request.token])
        return token_pb2.ValidateTokenResponse(
            active=True,
            sub="user-" + request.token,
            practice_id="demo-dental",
            roles=["admin", "manager"],
            scope="openid profile",
            sid="sid-1",
            exp=self.exp,
            amr=["pwd", "otp"],
            client_id="portal",
            jti="jti-" + request.token,
            acr="urn:providercenter:aal2",
            auth_time=1_799_999_000,
            name="Dana Admin",
            practice_name="Sunny Dental Group",
        )


def make(stub: FakeStub, clock: FakeClock, **kwargs: Any) -> GrpcTokenVerifier:
    return GrpcTokenVerifier("127.0.0.1:1", "portal", clock=clock, stub=stub, **kwargs)


def test_answer_maps_every_field_and_carries_the_deadline() -> None:
    stub, clock = FakeStub(), FakeClock()
    info = make(stub, clock, timeout_s=0.25).verify("t1")
    assert info == TokenInfo(
        active=True,
        sub="user-t1",
        practice_id="demo-dental",
        roles=("admin", "manager"),
        scope="openid profile",
        sid="sid-1",
        exp=2_000_000_000,
        amr=("pwd", "otp"),
        client_id="portal",
        acr="urn:providercenter:aal2",
        auth_time=1_799_999_000,
        name="Dana Admin",
        practice_name="Sunny Dental Group",
        jti="jti-t1",
    )
    assert stub.calls == [("t1", "portal", 0.25)]
    assert info.scopes == {"openid", "profile"}
    with pytest.raises(AttributeError):
        info.active = False  # type: ignore[misc]


def test_inactive_answers_carry_the_reason_name() -> None:
    stub, clock = FakeStub(), FakeClock()
    stub.inactive["t1"] = token_pb2.REVOKED
    assert make(stub, clock).verify("t1") == TokenInfo(active=False, reason="REVOKED")


def test_answers_are_cached_for_the_ttl_only() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock, cache_ttl_s=1.0)
    verifier.verify("t1")
    clock.advance(0.99)
    verifier.verify("t1")
    assert len(stub.calls) == 1
    clock.advance(0.02)
    verifier.verify("t1")
    assert len(stub.calls) == 2


def test_a_revocation_is_seen_after_the_ttl() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock)
    assert verifier.verify("t1").active
    stub.inactive["t1"] = token_pb2.REVOKED
    assert verifier.verify("t1").active  # within the second: the cached answer
    clock.advance(1.0)
    assert verifier.verify("t1").reason == "REVOKED"


def test_an_active_answer_is_never_cached_beyond_the_token_exp() -> None:
    clock = FakeClock(now=1_800_000_000.0)
    stub = FakeStub(exp=1_800_000_000 + 0)  # expires now: not cacheable at all
    verifier = make(stub, clock)
    verifier.verify("t1")
    verifier.verify("t1")
    assert len(stub.calls) == 2

    stub.exp = int(clock.now) + 1
    clock.advance(0.5)  # exp is 0.5 s away, less than the 1 s TTL
    verifier.verify("t2")
    clock.advance(0.49)
    verifier.verify("t2")
    assert len(stub.calls) == 3
    clock.advance(0.02)  # past exp though within the TTL
    verifier.verify("t2")
    assert len(stub.calls) == 4


def test_the_cache_is_a_bounded_lru() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock, cache_size=3)
    for token in ("a", "b", "c"):
        verifier.verify(token)
    verifier.verify("a")  # a is now the most recently used
    verifier.verify("d")  # evicts b
    assert len(verifier._cache) == 3
    calls = len(stub.calls)
    verifier.verify("a")
    verifier.verify("c")
    verifier.verify("d")
    assert len(stub.calls) == calls
    verifier.verify("b")
    assert len(stub.calls) == calls + 1


def test_a_clock_that_goes_back_does_not_stretch_a_cached_answer() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock)
    verifier.verify("t1")
    clock.advance(-30)
    verifier.verify("t1")
    assert len(stub.calls) == 2


def test_cache_keys_are_hashes_not_tokens() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock)
    verifier.verify("secret-token")
    assert all(isinstance(key, bytes) and len(key) == 32 for key in verifier._cache._entries)


def test_ttl_above_one_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        GrpcTokenVerifier("127.0.0.1:1", "portal", cache_ttl_s=5)
    with pytest.raises(ValueError, match="audience"):
        GrpcTokenVerifier("127.0.0.1:1", "")


def test_zero_ttl_disables_the_cache() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock, cache_ttl_s=0)
    verifier.verify("t1")
    verifier.verify("t1")
    assert len(stub.calls) == 2


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_unavailable_or_slow_is_retried_once(code: grpc.StatusCode) -> None:
    stub, clock = FakeStub(), FakeClock()
    stub.failures = [code]
    assert make(stub, clock).verify("t1").active
    assert len(stub.calls) == 2


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_failing_twice_raises_and_caches_nothing(code: grpc.StatusCode) -> None:
    stub, clock = FakeStub(), FakeClock()
    stub.failures = [code, code]
    verifier = make(stub, clock)
    with pytest.raises(TokenServiceUnavailable):
        verifier.verify("t1")
    assert verifier.verify("t1").active  # the outage was not remembered
    assert len(stub.calls) == 3


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED]
)
def test_other_failures_raise_without_retry(code: grpc.StatusCode) -> None:
    stub, clock = FakeStub(), FakeClock()
    stub.failures = [code]
    with pytest.raises(TokenServiceUnavailable):
        make(stub, clock).verify("t1")
    assert len(stub.calls) == 1


def test_invalid_argument_is_an_inactive_token_not_an_outage() -> None:
    stub, clock = FakeStub(), FakeClock()
    stub.failures = [grpc.StatusCode.INVALID_ARGUMENT]
    assert make(stub, clock).verify("t1") == TokenInfo(active=False, reason="MALFORMED")


@pytest.mark.parametrize("token", ["", "x" * 20_000])
def test_empty_or_huge_tokens_are_refused_without_asking(token: str) -> None:
    stub, clock = FakeStub(), FakeClock()
    assert make(stub, clock).verify(token).reason == "MALFORMED"
    assert stub.calls == []


def test_many_threads_share_one_verifier() -> None:
    stub, clock = FakeStub(), FakeClock()
    verifier = make(stub, clock, cache_size=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(300):
                token = f"t{(n * 7 + i) % 120}"
                assert verifier.verify(token).sub == "user-" + token
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(verifier._cache) <= 50


# --- JWKS ---------------------------------------------------------------------------------------

ISSUER = "http://auth.test"


class Keys:
    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.fetches = 0
        self.down = False

    def add(self, kid: str) -> None:
        self.private[kid] = JsonWebKey.generate_key("EC", "P-256", is_private=True, options={"kid": kid})

    def fetch(self, _uri: str, _timeout: float) -> dict:
        self.fetches += 1
        if self.down:
            import requests

            raise requests.ConnectionError("down")
        return {
            "keys": [
                dict(key.as_dict(is_private=False), use="sig", alg="ES256") for key in self.private.values()
            ]
        }

    def sign(self, kid: str, drop: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": ["portal"], "sub": "u1", "iat": now, "exp": now + 300, **claims}
        for name in drop:
            del payload[name]
        return (
            JsonWebToken(["ES256"]).encode({"alg": "ES256", "kid": kid}, payload, self.private[kid]).decode()
        )


def jwks_verifier(keys: Keys, clock: FakeClock | None = None) -> JwksTokenVerifier:
    return JwksTokenVerifier(
        ISSUER, f"{ISSUER}/jwks.json", "portal", clock=clock or time.time, fetch_jwks=keys.fetch
    )


def test_jwks_accepts_a_good_token_and_maps_claims() -> None:
    keys = Keys()
    keys.add("k1")
    token = keys.sign("k1", practice_id="demo-dental", roles=["admin"], sid="s1", scope="openid", jti="j1")
    info = jwks_verifier(keys).verify(token)
    assert info.active and info.sub == "u1" and info.practice_id == "demo-dental"
    assert info.roles == ("admin",) and info.sid == "s1" and info.jti == "j1"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "http://impostor.test"}, "WRONG_ISSUER"),
        ({"aud": ["someone-else"]}, "WRONG_AUDIENCE"),
        ({"exp": int(time.time()) - 60}, "EXPIRED"),
        ({"iat": int(time.time()) + 3600}, "EXPIRED"),
        ({"drop": ("sub",)}, "MISSING_CLAIM"),
        ({"drop": ("exp",)}, "MISSING_CLAIM"),
    ],
)
def test_jwks_checks_claims(claims: dict, reason: str) -> None:
    keys = Keys()
    keys.add("k1")
    assert jwks_verifier(keys).verify(keys.sign("k1", **claims)).reason == reason


def test_jwks_refuses_other_algorithms_and_bad_signatures() -> None:
    keys = Keys()
    keys.add("k1")
    verifier = jwks_verifier(keys)
    hs = JsonWebToken(["HS256"]).encode({"alg": "HS256", "kid": "k1"}, {"sub": "u1"}, b"k" * 32).decode()
    assert verifier.verify(hs).reason == "ALGORITHM_NOT_ALLOWED"
    _head, body, _sig = keys.sign("k1").split(".")
    unsigned = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(b"=").decode()
    )
    assert verifier.verify(f"{unsigned}.{body}.").reason == "ALGORITHM_NOT_ALLOWED"
    good = keys.sign("k1")
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert verifier.verify(tampered).reason == "BAD_SIGNATURE"
    assert verifier.verify("not-a-jwt").reason == "MALFORMED"


def test_jwks_unknown_kid_refetches_at_most_every_30_seconds() -> None:
    keys, clock = Keys(), FakeClock(now=time.time())
    keys.add("k1")
    verifier = jwks_verifier(keys, clock)
    assert verifier.verify(keys.sign("k1")).active
    assert keys.fetches == 1

    keys.add("k2")  # rotated within the 30 s after the first fetch
    assert verifier.verify(keys.sign("k2")).reason == "UNKNOWN_KEY"
    assert verifier.verify(keys.sign("k2", jti="x")).reason == "UNKNOWN_KEY"
    assert keys.fetches == 1
    clock.advance(30)
    assert verifier.verify(keys.sign("k2")).active
    assert keys.fetches == 2
    for _ in range(5):
        assert verifier.verify(keys.sign("k1")).active  # known kids never refetch
    assert keys.fetches == 2


def test_jwks_unreachable_is_unavailable_not_inactive() -> None:
    keys = Keys()
    keys.add("k1")
    keys.down = True
    with pytest.raises(TokenServiceUnavailable):
        jwks_verifier(keys).verify(keys.sign("k1"))
