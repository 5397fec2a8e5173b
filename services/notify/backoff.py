"""When to try a failed delivery again: exponential backoff with jitter.

The n-th failure waits ``base * 2**(n-1)`` seconds, capped at ``cap``, and then
a random share of up to half of that is taken off ("equal jitter"), so workers
that failed together during an outage do not all retry in the same instant,
while no retry comes sooner than half the nominal wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# 2**60 seconds is far beyond any cap; stopping the exponent here avoids huge floats.
_MAX_EXPONENT = 60


def nominal_delay(failures: int, base_s: float, cap_s: float) -> float:
    """The wait after the ``failures``-th failed attempt, before jitter."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    return min(cap_s, base_s * 2 ** min(failures - 1, _MAX_EXPONENT))


def backoff_delay(
    failures: int,
    base_s: float,
    cap_s: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The jittered wait after the ``failures``-th failure: in ``[nominal/2, nominal]``.

    ``rand`` returns a float in [0, 1); tests pass a fixed one.
    """
    nominal = nominal_delay(failures, base_s, cap_s)
    return nominal / 2 + (nominal / 2) * rand()
