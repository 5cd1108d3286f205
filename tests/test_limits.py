"""`gateway.http.limits.RateLimiter`, with a clock the test moves."""

from __future__ import annotations

import pytest

from gateway.http.limits import RateLimiter
from tests.support import ManualClock


def test_a_burst_is_allowed_then_requests_wait_for_refill():
    clock = ManualClock(50.0)
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") == pytest.approx(0.5)


def test_callers_have_buckets_of_their_own():
    limiter = RateLimiter(rate=1, burst=1, clock=ManualClock(50.0))
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None
    assert limiter.acquire("b") is None


def test_a_bucket_never_holds_more_than_the_burst():
    clock = ManualClock(50.0)
    limiter = RateLimiter(rate=10, burst=2, clock=clock)
    limiter.acquire("a")
    clock.now += 3600
    assert [limiter.acquire("a") is None for _ in range(3)] == [True, True, False]


def test_rate_zero_means_no_limit():
    limiter = RateLimiter(rate=0, burst=1, clock=ManualClock(50.0))
    assert all(limiter.acquire("a") is None for _ in range(1000))
