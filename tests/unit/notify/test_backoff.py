"""Backoff math: exponential growth, the cap, and jitter bounds."""

from __future__ import annotations

import random

import pytest

from services.notify.backoff import backoff_delay, nominal_delay
from services.notify.worker import RetryPolicy


def test_nominal_delay_doubles_from_the_base() -> None:
    assert [nominal_delay(n, 5.0, 10_000.0) for n in range(1, 6)] == [5.0, 10.0, 20.0, 40.0, 80.0]


def test_nominal_delay_is_capped() -> None:
    assert nominal_delay(10, 5.0, 900.0) == 900.0
    assert nominal_delay(10_000, 5.0, 900.0) == 900.0  # no overflow for absurd counts


def test_failures_count_from_one() -> None:
    with pytest.raises(ValueError):
        nominal_delay(0, 1.0, 10.0)


def test_jitter_stays_between_half_and_full_nominal() -> None:
    rng = random.Random(7)
    for failures in range(1, 12):
        nominal = nominal_delay(failures, 2.0, 300.0)
        for _ in range(200):
            delay = backoff_delay(failures, 2.0, 300.0, rng.random)
            assert nominal / 2 <= delay <= nominal


def test_jitter_extremes() -> None:
    assert backoff_delay(3, 1.0, 100.0, lambda: 0.0) == 2.0
    assert backoff_delay(3, 1.0, 100.0, lambda: 0.999999) == pytest.approx(4.0, rel=1e-5)


def test_jitter_spreads_retries() -> None:
    delays = {round(backoff_delay(4, 1.0, 100.0), 6) for _ in range(50)}
    assert len(delays) > 40


def test_zero_base_means_retry_at_once() -> None:
    assert backoff_delay(5, 0.0, 0.0) == 0.0


def test_retry_policy_uses_its_settings() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.5, backoff_cap_s=1.0)
    assert policy.delay_for(1, lambda: 0.0) == 0.25
    assert policy.delay_for(5, lambda: 0.0) == 0.5
