"""Retries with exponential backoff and full jitter, bounded by a deadline.

Usage::

    policy = RetryPolicy(attempts=4, base_delay=0.2, max_delay=5)
    page = await policy.run(
        attempt,                                   # async (timeout: float) -> T
        deadline=time.monotonic() + 20,
        retry_after=lambda exc: 1.5 if retryable(exc) else None,
    )

`retry_after` decides: None means "do not retry this error"; a number is the delay
the server asked for (0 when it asked for none, so backoff decides). A delay that
would cross the deadline ends the retries at once, with the last error: the caller
then answers in time instead of sleeping past its own deadline.

No library: tenacity would need a custom wait and stop for server-given delays and a
shared per-request deadline, which is most of this module anyway.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """No time was left for even one attempt."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one upstream call."""

    #: Tries, the first included (`GATEWAY_RETRY_ATTEMPTS`).
    attempts: int
    #: Upper bound of one attempt, further cut to the time left before the deadline
    #: (`KOMBO_READ_TIMEOUT`).
    attempt_timeout: float
    base_delay: float = 0.2
    max_delay: float = 5.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2^retry)]."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**retry))

    async def run(
        self,
        attempt: Callable[[float], Awaitable[T]],
        *,
        deadline: float,
        retry_after: Callable[[BaseException], float | None],
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> T:
        """Run `attempt(timeout)` until it succeeds, may not be retried, or time runs out.

        Raises:
            DeadlineExceeded: the deadline passed before the first attempt.
            Exception: the last attempt's error.
        """
        retry = 0
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise DeadlineExceeded("the request's deadline passed before Kombo answered")
            try:
                return await attempt(min(self.attempt_timeout, remaining))
            except Exception as error:
                asked = retry_after(error)
                if asked is None or retry + 1 >= self.attempts:
                    raise
                delay = max(asked, self.backoff(retry))
                if self.clock() + delay >= deadline:
                    raise
                if on_retry is not None:
                    on_retry(error)
                await self.sleep(delay)
                retry += 1
