"""Per-caller request rate limit: a token bucket per caller.

Usage::

    limiter = RateLimiter(rate=50, burst=100)
    wait = limiter.acquire("token:web")      # None: go ahead; else seconds until allowed
    wait = limiter.acquire("key:ab12", "addr:10.0.0.7", cost=3)   # every bucket pays, or none
    wait = limiter.wait("addr:10.0.0.7")     # would it pay? (nothing taken)

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

    def acquire(self, *callers: str, cost: int = 1) -> float | None:
        """Take `cost` requests from each caller's bucket, or from none of them when one
        is short; None when taken, else the seconds until every bucket could pay.

        Several callers: one request answers to several identities (a Kombo key a
        caller made up, and the address it came from), and each must stay within its
        rate, so rotating one identity does not escape the other.
        """
        return self._settle(callers, cost, take=True)

    def wait(self, *callers: str, cost: int = 1) -> float | None:
        """What `acquire` would answer, taking nothing: None when every bucket could pay
        `cost` now. For limits charged only afterwards (failed authentications)."""
        return self._settle(callers, cost, take=False)

    def _settle(self, callers: tuple[str, ...], cost: int, *, take: bool) -> float | None:
        if self.rate <= 0:
            return None
        cost = min(cost, self.burst)  # more than a full bucket holds could never be paid
        now = self._clock()
        buckets = []
        for caller in callers:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
            else:
                bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
                bucket.updated = now
            self._buckets[caller] = bucket
            buckets.append(bucket)
        short = max((cost - bucket.tokens for bucket in buckets), default=0.0)
        if short > 0:
            return short / self.rate
        if take:
            for bucket in buckets:
                bucket.tokens -= cost
        return None
