"""Kombo's "wait" held by every worker and replica: after a 429 with a delay for an
integration, nobody calls Kombo for that integration until the delay has passed.

Usage::

    backoff = SharedBackoff(link, keys)            # link None: this process only
    await backoff.hold("personio:X", 12.5)         # Kombo said: retry in 12.5 s
    seconds = await backoff.remaining("personio:X")  # 0.0: go ahead

A hold is only ever extended, never shortened: two answers with different delays leave
the later end in place. Each process also remembers the holds it learnt itself, so it
holds back even while Redis is unavailable, and asks Redis only when it knows of none.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cachetools import TTLCache
from redis.asyncio import Redis

from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink

# KEYS[1]: the hold; ARGV[1]: its length in ms. Set only if it ends later than the current.
_EXTEND = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 0
"""
#: The longest hold taken from Kombo (a hostile or broken `Retry-After` of a year must not
#: stop an integration for a year).
MAX_HOLD = 300.0
#: Integrations with a hold remembered in-process at most (bounded: integration IDs
#: come from callers).
_MAX_HELD = 10_000


class SharedBackoff:
    """Holds per integration, in this process and, with a link, in Redis."""

    def __init__(
        self,
        link: RedisLink | None,
        keys: KeySpace,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.keys = keys
        self._clock = clock
        self._until: TTLCache[str, float] = TTLCache(_MAX_HELD, ttl=MAX_HOLD, timer=clock)

    async def hold(self, integration_id: str, seconds: float) -> None:
        """Kombo asked for `seconds` of quiet for this integration."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        seconds = min(seconds, MAX_HOLD)
        until = self._clock() + seconds
        if until > self._until.get(integration_id, 0.0):
            self._until[integration_id] = until
        if self.link is None:
            return
        key = self.keys.backoff(integration_id)
        ms = max(1, math.ceil(seconds * 1000))

        async def extend(redis: Redis) -> None:
            await redis.eval(_EXTEND, 1, key, ms)

        await self.link.run("backoff", extend, fallback=None)

    async def remaining(self, integration_id: str) -> float:
        """Seconds until calls for this integration may go out again (0.0: now)."""
        local = self._until.get(integration_id, 0.0) - self._clock()
        if local > 0 or self.link is None:
            return max(local, 0.0)
        key = self.keys.backoff(integration_id)

        async def ttl(redis: Redis) -> float:
            left_ms = await redis.pttl(key)
            return left_ms / 1000 if left_ms > 0 else 0.0

        return await self.link.run("backoff", ttl, fallback=0.0)
