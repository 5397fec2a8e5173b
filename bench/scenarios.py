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
    rounds: int = 4  # each row with a peer: rounds alternating ours and peer
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
    """Token endpoint (code exchange, refresh, client credentials), introspection, ValidateToken.

    Each row with a peer runs in rounds that alternate ours, peer, ours, peer…,
    so both meet the same background load on a shared machine; the figures
    are over all rounds (latencies together, round spans added up).
    """

    def __init__(self, ours: Ours, peer: Peer, users: list[User], counts: Counts, say: Callable[[str], None]):
        self.ours, self.peer, self.users, self.n, self.say = ours, peer, users, counts, say
        self.ours_tokens: list[dict] = []
        self.peer_tokens: list[dict] = []
        self.ours_browsers: list = []
        self.peer_browsers: list = []

    def _run(self, kind: str, address: str, warmup: int, count: int, params: list[dict]) -> load.Run:
        cpu = {
            self.ours.http_address: self.ours.web_cpu,
            self.ours.grpc_address: self.ours.grpc_cpu,
            self.peer.address: self.peer.cpu,
        }[address]
        return load.run([CallerSpec(kind, address, warmup, count, p) for p in params], cpu)

    def _alternate(self, name: str, total: int, warmup: int, ours_round, peer_round) -> tuple[Stats, Stats]:  # type: ignore[no-untyped-def]
        """``total`` requests per caller at each provider in ``rounds`` alternating rounds.

        ``*_round(warmup, count)`` runs one round and returns its :class:`load.Run`.
        """
        rounds = max(1, min(self.n.rounds, total))
        ours_runs: list[load.Run] = []
        peer_runs: list[load.Run] = []
        done = 0
        for index in range(rounds):
            count = (total - done) // (rounds - index)
            first = warmup if index == 0 else 2
            self.say(f"{name}: round {index + 1}/{rounds}, {count} requests per caller, ours then peer")
            ours_runs.append(ours_round(first, count))
            peer_runs.append(peer_round(first, count))
            done += count
        return load.merge(ours_runs), load.merge(peer_runs)

    def code_exchange(self) -> Pair:
        """Each round mints its codes first (untimed): codes live 60 s, and the peer's
        in-memory store keeps only its 1000 most recently used objects (codes,
        interactions, grants, sessions…), so codes minted long before their turn
        would be gone."""
        n = self.n
        self.say("code exchange: signing in one browser per caller at both providers")
        self.ours_browsers = [self.ours.browser(u) for u in self.users[: n.callers]]
        self.peer_browsers = [self.peer.browser() for _ in range(n.callers)]
        ours_params = {"path": "/token", "auth": self.ours.client_auth, "redirect_uri": REDIRECT_URI}
        peer_params = {
            "path": self.peer.paths["token_endpoint"],
            "auth": self.peer.client_auth,
            "redirect_uri": PEER_REDIRECT,
        }

        def ours_round(warmup: int, count: int) -> load.Run:
            codes, minted_s = _mint(warmup + count, self.ours_browsers, self.ours.authorize)
            _check_mint_time("ours", minted_s)
            run = self._run(
                "code", self.ours.http_address, warmup, count, [{**ours_params, "codes": c} for c in codes]
            )
            self.ours_tokens = run.states
            return run

        def peer_round(warmup: int, count: int) -> load.Run:
            codes, minted_s = _mint(warmup + count, self.peer_browsers, self.peer.authorize)
            _check_mint_time("peer", minted_s)
            run = self._run(
                "code", self.peer.address, warmup, count, [{**peer_params, "codes": c} for c in codes]
            )
            self.peer_tokens = run.states
            return run

        ours, peer = self._alternate("code exchange", n.token, n.token_warmup, ours_round, peer_round)
        _require_jwts("peer code exchange", self.peer_tokens)
        return Pair(
            "token: authorization code exchange",
            ours,
            peer,
            "codes minted (untimed) through /authorize with a signed-in browser before each round; "
            "each answer has an ID token, a JWT access token and a refresh token at both",
        )

    def refresh(self) -> Pair:
        """Each caller's chain goes on from round to round: every call spends the
        refresh token the previous answer gave."""
        n = self.n
        rotated = 0

        def ours_round(warmup: int, count: int) -> load.Run:
            params = [
                {"path": "/token", "auth": self.ours.client_auth, "refresh_token": t["refresh_token"]}
                for t in self.ours_tokens
            ]
            run = self._run("refresh", self.ours.http_address, warmup, count, params)
            self.ours_tokens = run.states
            return run

        def peer_round(warmup: int, count: int) -> load.Run:
            nonlocal rotated
            path = self.peer.paths["token_endpoint"]
            params = [
                {"path": path, "auth": self.peer.client_auth, "refresh_token": t["refresh_token"]}
                for t in self.peer_tokens
            ]
            run = self._run("refresh", self.peer.address, warmup, count, params)
            self.peer_tokens = run.states
            rotated += sum(t.get("rotated", 0) for t in run.states)
            return run

        ours, peer = self._alternate("refresh", n.token, n.token_warmup, ours_round, peer_round)
        _require_jwts("peer refresh", self.peer_tokens)
        note = "ours rotates the refresh token on every use (with reuse detection); " + (
            "so did the peer"
            if rotated
            else "the peer does not rotate for confidential clients (its default), so it writes less"
        )
        return Pair("token: refresh", ours, peer, note)

    def client_credentials(self) -> Pair:
        n = self.n
        form = {"grant_type": "client_credentials", "scope": "api"}
        ours_params = [
            {"path": "/token", "auth": self.ours.service_auth, "form": form, "expect": "access_token"}
        ]
        peer_params = [
            {
                "path": self.peer.paths["token_endpoint"],
                "auth": self.peer.service_auth,
                "form": {**form, "resource": RESOURCE},  # its JWT access tokens
                "expect": "access_token",
            }
        ]
        ours, peer = self._alternate(
            "client credentials",
            n.token,
            n.token_warmup,
            lambda w, c: self._run("form", self.ours.http_address, w, c, ours_params * n.callers),
            lambda w, c: self._run("form", self.peer.address, w, c, peer_params * n.callers),
        )
        return Pair("token: client credentials", ours, peer, "ES256 JWT access tokens at both")

    def introspection(self) -> Pair:
        n = self.n
        ours_params = [
            {
                "path": "/introspect",
                "auth": self.ours.client_auth,
                "form": {"token": t["access_token"], "token_type_hint": "access_token"},
                "expect": "active",
            }
            for t in self.ours_tokens
        ]
        # Its opaque access tokens: one more authorization per caller, without resource=.
        opaque = [
            self.peer.exchange(*self.peer.authorize(b, jwt=False))["access_token"] for b in self.peer_browsers
        ]
        peer_params = [
            {
                "path": self.peer.paths["introspection_endpoint"],
                "auth": self.peer.client_auth,
                "form": {"token": token, "token_type_hint": "access_token"},
                "expect": "active",
            }
            for token in opaque
        ]
        ours, peer = self._alternate(
            "introspection",
            n.introspect,
            n.introspect_warmup,
            lambda w, c: self._run("form", self.ours.http_address, w, c, ours_params),
            lambda w, c: self._run("form", self.peer.address, w, c, peer_params),
        )
        return Pair(
            "introspection",
            ours,
            peer,
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
    verify_before_ms: float  # wall time, median, just before the sign-in load
    verify_after_ms: float  # and just after it
    verify_cpu_ms: float  # CPU time of the same verifies: what other work on the machine cannot inflate
    verify_samples: int
    workers: int
    signins: Stats
    unknown: Stats
    known_wrong: Stats

    @property
    def verify_ms(self) -> float:
        return (self.verify_before_ms + self.verify_after_ms) / 2

    @property
    def limit_per_s(self) -> float:
        return self.workers / (self.verify_ms / 1000)

    @property
    def throughput_ratio(self) -> float:
        return self.signins.per_s / self.limit_per_s

    @property
    def timing_ratio(self) -> float:
        return self.unknown.p50_ms / self.known_wrong.p50_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "argon2id_verify_ms": round(self.verify_ms, 3),
            "argon2id_verify_before_ms": round(self.verify_before_ms, 3),
            "argon2id_verify_after_ms": round(self.verify_after_ms, 3),
            "argon2id_verify_cpu_ms": round(self.verify_cpu_ms, 3),
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


def argon2_verify_ms(ours: Ours, samples: int) -> tuple[float, float]:
    """The median wall and CPU time (ms) of one argon2id verify with the configured parameters,
    in this process while the service is idle."""
    from services.auth.passwords import Passwords

    s = ours.settings
    passwords = Passwords(
        time_cost=s.argon2_time_cost, memory_kib=s.argon2_memory_kib, parallelism=s.argon2_parallelism
    )
    stored = passwords.hash("Correct-Horse-Battery-9")
    for _ in range(3):
        passwords.verify(stored, "Correct-Horse-Battery-9")
    wall, cpu = [], []
    for _ in range(samples):
        began, began_cpu = time.perf_counter(), time.thread_time()
        passwords.verify(stored, "Correct-Horse-Battery-9")
        wall.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def issue4(ours: Ours, signin_users: list[User], timing_users: list[User], n: Counts, say) -> Issue4Result:  # type: ignore[no-untyped-def]
    say("argon2id: timing one verify with the configured parameters")
    before_ms, cpu_before_ms = argon2_verify_ms(ours, n.argon2)

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
        [CallerSpec("signin", ours.http_address, n.signin_warmup, n.signins, p) for p in params], ours.web_cpu
    ).stats
    say("argon2id: timing one verify again")
    after_ms, cpu_after_ms = argon2_verify_ms(ours, n.argon2)

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
    cpu_ms = (cpu_before_ms + cpu_after_ms) / 2
    return Issue4Result(
        before_ms, after_ms, cpu_ms, n.argon2, ours.workers, signins, unknown_stats, known_stats
    )


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
