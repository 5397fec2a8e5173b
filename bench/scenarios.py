"""The measurements of issues 3, 4 and 5, each against ours and (where there is one) the peer."""

from __future__ import annotations

import random
import secrets
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench import load
from bench.client import Browser, expect, form_fields
from bench.load import CallerSpec, Stats
from bench.ours import REDIRECT_URI, Ours, User
from bench.peer import REDIRECT_URI as PEER_REDIRECT
from bench.peer import RESOURCE, Peer
from bench.util import pkce_pair

# Codes live 60 s at both providers: minting must leave time to spend them.
CODE_LIFETIME_S = 60.0
GRPC_P99_GOAL_MS = 2.0


@dataclass(frozen=True)
class Counts:
    callers: int = 8
    token: int = 100  # per caller, each token-endpoint measurement
    token_warmup: int = 10
    code_round: int = 25  # codes minted per caller before each round of code exchanges
    introspect: int = 200
    introspect_warmup: int = 20
    grpc: int = 1000
    grpc_warmup: int = 100
    signins: int = 25
    signin_warmup: int = 2
    timing: int = 100  # per side, sequential (unknown vs known, known vs unknown address)
    timing_warmup: int = 10
    argon2: int = 30


@dataclass
class Pair:
    """Ours and the peer's figures for one measurement."""

    name: str
    ours: Stats
    peer: Stats | None = None
    note: str = ""
    goal_p99_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ours": self.ours.as_dict(), "note": self.note}
        if self.goal_p99_ms is not None:
            out["goal_p99_ms"] = self.goal_p99_ms
            out["goal_met"] = self.ours.p99_ms < self.goal_p99_ms
        if self.peer is not None:
            out["peer"] = self.peer.as_dict()
            out["ratio_per_s"] = _ratio(self.ours.per_s, self.peer.per_s)
            out["ratio_p99"] = _ratio(self.ours.p99_ms, self.peer.p99_ms)
        return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _mint(
    count_per_browser: int, browsers: list, mint: Callable[[Any], tuple[str, str]]
) -> tuple[list, float]:
    """Authorization codes for each browser (one thread per browser); returns them and the time taken."""
    began = time.monotonic()

    def one(browser: Any) -> list[tuple[str, str]]:
        return [mint(browser) for _ in range(count_per_browser)]

    with ThreadPoolExecutor(len(browsers)) as pool:
        codes = list(pool.map(one, browsers))
    return codes, time.monotonic() - began


class Issue3:
    """Token endpoint (code exchange, refresh, client credentials), introspection, ValidateToken."""

    def __init__(self, ours: Ours, peer: Peer, users: list[User], counts: Counts, say: Callable[[str], None]):
        self.ours, self.peer, self.users, self.n, self.say = ours, peer, users, counts, say
        self.ours_tokens: list[dict] = []
        self.peer_tokens: list[dict] = []
        self.peer_browsers: list = []

    def _run(self, kind: str, address: str, warmup: int, count: int, params: list[dict]) -> load.Run:
        return load.run([CallerSpec(kind, address, warmup, count, p) for p in params])

    def _code_rounds(self, who: str, address: str, browsers: list, mint, params: dict) -> tuple[Stats, list]:  # type: ignore[no-untyped-def]
        """Mint a round of codes per caller, spend them under load, again until the count is reached.

        In rounds because codes live 60 s, and because the peer's in-memory store
        keeps only its 1000 most recently used objects (codes, interactions,
        grants, sessions…): codes minted long before their turn would be gone.
        """
        n = self.n
        runs: list[load.Run] = []
        done = 0
        while done < n.token:
            count = min(n.code_round, n.token - done)
            warmup = n.token_warmup if not runs else 2
            codes, minted_s = _mint(warmup + count, browsers, mint)
            _check_mint_time(who, minted_s)
            runs.append(self._run("code", address, warmup, count, [{**params, "codes": c} for c in codes]))
            done += count
        return load.merge(runs), runs[-1].states

    def code_exchange(self) -> Pair:
        n = self.n
        self.say("code exchange: signing in one browser per caller at both providers")
        ours_browsers = [self.ours.browser(u) for u in self.users[: n.callers]]
        self.peer_browsers = [self.peer.browser() for _ in range(n.callers)]
        rounds = -(-n.token // n.code_round)
        self.say(
            f"code exchange (ours): {rounds} rounds of minting codes through /authorize, then spending them"
        )
        ours, self.ours_tokens = self._code_rounds(
            "ours",
            self.ours.http_address,
            ours_browsers,
            self.ours.authorize,
            {"path": "/token", "auth": self.ours.client_auth, "redirect_uri": REDIRECT_URI},
        )
        self.say(
            f"code exchange (peer): {rounds} rounds of minting codes through its forms, then spending them"
        )
        peer, self.peer_tokens = self._code_rounds(
            "peer",
            self.peer.address,
            self.peer_browsers,
            self.peer.authorize,
            {
                "path": self.peer.paths["token_endpoint"],
                "auth": self.peer.client_auth,
                "redirect_uri": PEER_REDIRECT,
            },
        )
        _require_jwts("peer code exchange", self.peer_tokens)
        return Pair(
            "token: authorization code exchange",
            ours,
            peer,
            f"codes minted through /authorize with a signed-in browser, {n.code_round} per caller a round, "
            "then spent; each answer has an ID token, a JWT access token and a refresh token at both",
        )

    def refresh(self) -> Pair:
        n = self.n
        self.say("refresh (ours, rotating: each call spends the token the previous answer gave)")
        params = [
            {"path": "/token", "auth": self.ours.client_auth, "refresh_token": t["refresh_token"]}
            for t in self.ours_tokens
        ]
        ours = self._run("refresh", self.ours.http_address, n.token_warmup, n.token, params)
        self.ours_tokens = ours.states
        self.say("refresh (peer)")
        path = self.peer.paths["token_endpoint"]
        params = [
            {"path": path, "auth": self.peer.client_auth, "refresh_token": t["refresh_token"]}
            for t in self.peer_tokens
        ]
        peer = self._run("refresh", self.peer.address, n.token_warmup, n.token, params)
        _require_jwts("peer refresh", peer.states)
        rotated = sum(t.get("rotated", 0) for t in peer.states)
        note = "ours rotates the refresh token on every use (with reuse detection); " + (
            "so did the peer"
            if rotated
            else "the peer does not rotate for confidential clients (its default), so it writes less"
        )
        return Pair("token: refresh", ours.stats, peer.stats, note)

    def client_credentials(self) -> Pair:
        n = self.n
        self.say("client credentials (ours)")
        form = {"grant_type": "client_credentials", "scope": "api"}
        params = [{"path": "/token", "auth": self.ours.service_auth, "form": form, "expect": "access_token"}]
        ours = self._run("form", self.ours.http_address, n.token_warmup, n.token, params * n.callers)
        self.say("client credentials (peer, resource=urn:peer:api for JWTs)")
        params = [
            {
                "path": self.peer.paths["token_endpoint"],
                "auth": self.peer.service_auth,
                "form": {**form, "resource": RESOURCE},
                "expect": "access_token",
            }
        ]
        peer = self._run("form", self.peer.address, n.token_warmup, n.token, params * n.callers)
        return Pair("token: client credentials", ours.stats, peer.stats, "ES256 JWT access tokens at both")

    def introspection(self) -> Pair:
        n = self.n
        self.say("introspection (ours: our JWT access tokens)")
        params = [
            {
                "path": "/introspect",
                "auth": self.ours.client_auth,
                "form": {"token": t["access_token"], "token_type_hint": "access_token"},
                "expect": "active",
            }
            for t in self.ours_tokens
        ]
        ours = self._run("form", self.ours.http_address, n.introspect_warmup, n.introspect, params)
        self.say("introspection (peer: its opaque access tokens)")
        opaque = [
            self.peer.exchange(*self.peer.authorize(b, jwt=False))["access_token"] for b in self.peer_browsers
        ]
        params = [
            {
                "path": self.peer.paths["introspection_endpoint"],
                "auth": self.peer.client_auth,
                "form": {"token": token, "token_type_hint": "access_token"},
                "expect": "active",
            }
            for token in opaque
        ]
        peer = self._run("form", self.peer.address, n.introspect_warmup, n.introspect, params)
        return Pair(
            "introspection",
            ours.stats,
            peer.stats,
            "ours: user JWT access tokens (signature, revocation state in Redis, user row); "
            "peer: its opaque tokens (it refuses to introspect JWTs)",
        )

    def validate_token(self) -> list[Pair]:
        n = self.n
        self.say(f"ValidateToken over gRPC (ours), {n.callers} callers, then 1 caller")
        params = [{"token": t["access_token"], "audience": self.ours.client_id} for t in self.ours_tokens]
        loaded = self._run("grpc", self.ours.grpc_address, n.grpc_warmup, n.grpc, params)
        alone = self._run("grpc", self.ours.grpc_address, n.grpc_warmup, n.grpc, params[:1])
        return [
            Pair(
                f"gRPC ValidateToken ({n.callers} callers)",
                loaded.stats,
                None,
                "user access tokens: signature, then revocation, session, suspension (one Redis round trip)",
                goal_p99_ms=GRPC_P99_GOAL_MS,
            ),
            Pair(
                "gRPC ValidateToken (1 caller)", alone.stats, None, "the same, one caller: the latency floor"
            ),
        ]


def _require_jwts(what: str, states: list[dict]) -> None:
    """JWT access tokens against JWT access tokens: a compact JWS has two dots."""
    tokens = [s.get("access_token", "") for s in states]
    if not tokens or any(t.count(".") != 2 for t in tokens):
        raise RuntimeError(f"{what}: expected JWT access tokens")


def _check_mint_time(who: str, seconds: float) -> None:
    if seconds > CODE_LIFETIME_S * 0.6:
        raise RuntimeError(
            f"minting the {who} codes took {seconds:.0f} s; they live {CODE_LIFETIME_S:.0f} s "
            "(lower BENCH_TOKEN_REQUESTS)"
        )


# --- issue 4 ---------------------------------------------------------------------------------


@dataclass
class Issue4Result:
    verify_ms: float
    verify_samples: int
    limit_per_s: float
    signins: Stats
    unknown: Stats
    known_wrong: Stats

    @property
    def throughput_ratio(self) -> float:
        return self.signins.per_s / self.limit_per_s

    @property
    def timing_ratio(self) -> float:
        return self.unknown.p50_ms / self.known_wrong.p50_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "argon2id_verify_ms": round(self.verify_ms, 3),
            "argon2id_verify_samples": self.verify_samples,
            "limit_signins_per_s": round(self.limit_per_s, 2),
            "signins": self.signins.as_dict(),
            "signins_vs_limit": round(self.throughput_ratio, 3),
            "signins_vs_limit_goal": ">= 0.75",
            "password_step_unknown_user": self.unknown.as_dict(),
            "password_step_known_user_wrong_password": self.known_wrong.as_dict(),
            "unknown_vs_known_median_ratio": round(self.timing_ratio, 3),
            "unknown_vs_known_goal": "0.95 .. 1.05",
        }


def argon2_verify_ms(ours: Ours, samples: int) -> float:
    """The median time of one argon2id verify with the configured parameters, in this process."""
    from services.auth.passwords import Passwords

    s = ours.settings
    passwords = Passwords(
        time_cost=s.argon2_time_cost, memory_kib=s.argon2_memory_kib, parallelism=s.argon2_parallelism
    )
    stored = passwords.hash("Correct-Horse-Battery-9")
    for _ in range(3):
        passwords.verify(stored, "Correct-Horse-Battery-9")
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        passwords.verify(stored, "Correct-Horse-Battery-9")
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def issue4(ours: Ours, signin_users: list[User], timing_users: list[User], n: Counts, say) -> Issue4Result:  # type: ignore[no-untyped-def]
    say("argon2id: timing one verify with the configured parameters")
    verify_ms = argon2_verify_ms(ours, n.argon2)
    limit = ours.workers / (verify_ms / 1000)

    say(f"sign-ins: {n.callers} callers, {n.signins} whole sign-ins each (password + TOTP)")
    per = n.signin_warmup + n.signins
    params = []
    for i in range(n.callers):
        users = signin_users[i * per : (i + 1) * per]
        params.append(
            {
                "users": [u.as_tuple() for u in users],
                "authorize": [ours.authorize_path(pkce_pair()[1]) for _ in users],
                "redirect_uri": REDIRECT_URI,
            }
        )
    signins = load.run(
        [CallerSpec("signin", ours.http_address, n.signin_warmup, n.signins, p) for p in params]
    ).stats

    say("sign-in timing: unknown User ID vs known User ID with a wrong password (one caller, interleaved)")
    browser = Browser(ours.connection())
    page = expect(browser.get("/signin"), 200, "sign-in page")
    fields = form_fields(page.text)

    def unknown(i: int) -> None:
        form = {**fields, "user_id": f"bench.nobody.{secrets.token_hex(4)}", "password": f"Wrong-Pass-{i}-x"}
        expect(browser.post("/signin", form), 401, "unknown user")

    def known(i: int) -> None:
        user = timing_users[i % len(timing_users)]
        form = {**fields, "user_id": user.user_id, "password": f"Wrong-Pass-{i}-x"}
        expect(browser.post("/signin", form), 401, "known user, wrong password")

    unknown_stats, known_stats = interleaved(unknown, known, n.timing, n.timing_warmup)
    return Issue4Result(verify_ms, n.argon2, limit, signins, unknown_stats, known_stats)


def interleaved(
    a: Callable[[int], None], b: Callable[[int], None], count: int, warmup: int
) -> tuple[Stats, Stats]:
    """Time ``a`` and ``b`` one after another in a shuffled order, so drift hits both alike."""
    for i in range(warmup):
        a(i)
        b(i)
    order = [0] * count + [1] * count
    random.Random(7).shuffle(order)  # noqa: S311 - an order, not a secret
    times: tuple[list[float], list[float]] = ([], [])
    began = time.perf_counter()
    for i, which in enumerate(order):
        fn = (a, b)[which]
        start = time.perf_counter()
        fn(i)
        times[which].append(time.perf_counter() - start)
    seconds = time.perf_counter() - began
    return load.summarise(times[0], seconds, []), load.summarise(times[1], seconds, [])


# --- issue 5 ---------------------------------------------------------------------------------


def issue5(ours: Ours, users: list[User], n: Counts, say) -> tuple[Stats, Stats]:  # type: ignore[no-untyped-def]
    say("forgot User ID: known vs unknown address (one caller, interleaved)")
    browser = Browser(ours.connection())
    page = expect(browser.get("/forgot-user-id"), 200, "forgot-user-id page")
    fields = form_fields(page.text)

    def known(i: int) -> None:
        form = {**fields, "email": users[i % len(users)].email}
        expect(browser.post("/forgot-user-id", form), 200, "forgot-user-id (known)")

    def unknown(i: int) -> None:
        form = {**fields, "email": f"nobody.{secrets.token_hex(4)}@example.test"}
        expect(browser.post("/forgot-user-id", form), 200, "forgot-user-id (unknown)")

    return interleaved(known, unknown, n.timing, n.timing_warmup)
