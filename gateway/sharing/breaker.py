"""A circuit breaker: after repeated failures, stop calling for a while, then try again.

Usage::

    breaker = CircuitBreaker(failures=3, cooldown=5.0)
    if breaker.allows():
        try:
            ...                       # the call
        except OSError:
            breaker.failed()
        else:
            breaker.succeeded()

Why: a Redis that is down or slow costs every request its timeout; after `failures`
failures in a row the breaker opens and calls are skipped (the caller falls back at
once) for `cooldown` seconds. Then one call at a time is let through (half-open): a
success closes the breaker, a failure opens it for another cooldown.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are skipped until the cooldown has passed
    HALF_OPEN = "half_open"  # one trial call is in flight


class CircuitBreaker:
    """Counts consecutive failures; `allows()` says whether to make the next call."""

    def __init__(
        self,
        *,
        failures: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allows(self) -> bool:
        """Whether to make a call now. Past the cooldown, the first caller makes the
        trial call; the others keep falling back until it has ended."""
        if self._opened_at is None:
            return True
        if self._trial or self._clock() - self._opened_at < self.cooldown:
            return False
        self._trial = True
        return True

    def succeeded(self) -> bool:
        """Record a success; True when it closed an open breaker (Redis is back)."""
        reopened = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._trial = False
        return reopened

    def failed(self) -> bool:
        """Record a failure; True when it opened a closed breaker (Redis went away)."""
        self._failures += 1
        was_closed = self._opened_at is None
        if self._trial or self._failures >= self.threshold:
            self._opened_at = self._clock()
            self._trial = False
            return was_closed
        return False
