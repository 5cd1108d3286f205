"""Per-caller request rate limit: a token bucket per caller.

Usage::

    limiter = RateLimiter(rate=50, burst=100)
    wait = limiter.acquire("token:web")      # None: go ahead; else seconds until allowed

Buckets of callers not seen for a while are dropped (a bounded TTL cache), so a flood
of distinct client addresses cannot grow memory without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

_MAX_CALLERS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` requests per second per caller, bursts of up to `burst`; `rate=0` is no limit."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        # A bucket untouched for the time it takes to refill completely is full again:
        # forgetting it then changes nothing.
        idle = burst / rate if rate > 0 else 1.0
        self._buckets: TTLCache[str, _Bucket] = TTLCache(_MAX_CALLERS, ttl=idle, timer=clock)

    def acquire(self, caller: str) -> float | None:
        """Take one request from `caller`'s bucket; the seconds to wait if it is empty."""
        if self.rate <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._buckets[caller] = bucket
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate
