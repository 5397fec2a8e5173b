"""``make bench``: our auth service against the peer OpenID Provider, in one run on one machine.

Prints a table of figures and ratios and writes them to var/bench/results.json.
See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench import report
from bench.ours import Ours
from bench.peer import Peer
from bench.scenarios import Counts, Issue3, issue4, issue5

RESULTS = Path("var/bench/results.json")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def counts_from_env() -> Counts:
    base = Counts()
    return Counts(
        callers=_int("BENCH_CALLERS", base.callers),
        token=_int("BENCH_TOKEN_REQUESTS", base.token),
        rounds=_int("BENCH_ROUNDS", base.rounds),
        introspect=_int("BENCH_INTROSPECT_REQUESTS", base.introspect),
        grpc=_int("BENCH_GRPC_CALLS", base.grpc),
        signins=_int("BENCH_SIGNINS", base.signins),
        timing=_int("BENCH_TIMING_SAMPLES", base.timing),
    )


_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"  {time.monotonic() - _STARTED:6.1f} s · {message}", file=sys.stderr, flush=True)


def main() -> int:
    counts = counts_from_env()
    began = time.monotonic()
    peer = Peer()
    ours = Ours(workers=2)
    try:
        say(f"peer: copying {peer.source}, npm ci, starting it")
        peer.start()
        say("ours: migrating, starting auth web (gunicorn) and auth grpc")
        ours.start()
        signin_pool = counts.callers * (counts.signin_warmup + counts.signins)
        users = ours.add_data(counts.callers + signin_pool + 50)
        minting, signin_users, timing_users = (
            users[: counts.callers],
            users[counts.callers : counts.callers + signin_pool],
            users[counts.callers + signin_pool :],
        )
        meta = report.machine(ours, peer, counts)
        meta["load_average_before"] = report.load_average()

        three = Issue3(ours, peer, minting, counts, say)
        issue3 = [
            three.code_exchange(),
            three.refresh(),
            three.client_credentials(),
            three.introspection(),
            *three.validate_token(),
        ]
        four = issue4(ours, signin_users, timing_users, counts, say)
        five = issue5(ours, timing_users, counts, say)
    finally:
        say("stopping both providers")
        try:
            ours.stop()
        finally:
            peer.stop()
    meta["duration_s"] = round(time.monotonic() - began, 1)
    meta["load_average_after"] = report.load_average()
    results = report.results(meta, issue3, four, five)
    print(report.table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report.write(results, RESULTS)
    print(f"\nresults written to {RESULTS}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
