"""The caller rate limit held across every worker and replica: GCRA in one Lua script.

Usage::

    limiter = SharedRateLimiter(link, keys, rate=50, burst=100, local=RateLimiter(50, 100))
    # link None (no GATEWAY_REDIS_URL): the local limiter alone
    wait = await limiter.acquire("token:web")      # None: go ahead; else seconds to wait
    wait = await limiter.wait("addr:10.0.0.7")     # would it pay? (nothing taken)

Same answers as the in-process token bucket (`gateway.http.limits.RateLimiter`), which
it falls back to while Redis is unavailable: `burst` requests at once, then `rate` a
second, several callers paying together or not at all. GCRA keeps one number per caller
(the theoretical arrival time of its next request) and decides in one atomic script, one
round trip per request, with Redis's clock (`TIME`), so replicas' clocks need not agree.
A caller's key expires when its allowance is whole again.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink

# KEYS: one per caller. ARGV: ms per request, burst, cost, take (1) or only ask (0).
# Returns the ms to wait (as a string: Lua numbers become integers in replies), "0": go.
_GCRA = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local wait = 0
local next_arrival = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  next_arrival[i] = tat + interval * cost
  local allowed_at = next_arrival[i] - tolerance
  if allowed_at - now > wait then wait = allowed_at - now end
end
if wait > 0 then return tostring(wait) end
if ARGV[4] == '1' then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, tostring(next_arrival[i]), 'PX', math.ceil(next_arrival[i] - now))
  end
end
return '0'
"""


class LocalLimiter(Protocol):
    """The in-process limiter to fall back on (`RateLimiter`'s methods)."""

    def acquire(self, *callers: str, cost: int = 1) -> float | None: ...

    def wait(self, *callers: str, cost: int = 1) -> float | None: ...


class SharedRateLimiter:
    """`rate` requests a second per caller, bursts of `burst`, across all processes."""

    def __init__(
        self,
        link: RedisLink | None,
        keys: KeySpace,
        *,
        rate: float,
        burst: int,
        local: LocalLimiter,
    ) -> None:
        self.link = link
        self.keys = keys
        self.rate = rate
        self.burst = burst
        self.local = local
        self._script = link.client.register_script(_GCRA) if link is not None else None

    async def acquire(self, *callers: str, cost: int = 1) -> float | None:
        """Take `cost` from every caller's allowance, or from none; None when taken,
        else the seconds until all could pay."""
        return await self._settle(callers, cost, take=True)

    async def wait(self, *callers: str, cost: int = 1) -> float | None:
        """What `acquire` would answer, taking nothing."""
        return await self._settle(callers, cost, take=False)

    async def _settle(self, callers: tuple[str, ...], cost: int, *, take: bool) -> float | None:
        if self.rate <= 0 or not callers:
            return None
        local = self.local.acquire if take else self.local.wait
        cost = min(cost, self.burst)  # more than a full allowance could never be paid
        script = self._script
        if self.link is None or script is None:
            return local(*callers, cost=cost)
        keys = [self.keys.rate(caller) for caller in callers]
        interval_ms = 1000.0 / self.rate

        async def decide(redis: Redis) -> tuple[bool, float | None]:
            answer = await script(
                keys=keys,
                args=[repr(interval_ms), self.burst, cost, 1 if take else 0],
                client=redis,
            )
            wait_ms = float(answer.decode() if isinstance(answer, bytes) else answer)
            return True, (wait_ms / 1000 if wait_ms > 0 else None)

        unanswered: tuple[bool, float | None] = (False, None)
        answered, wait = await self.link.run("rate_limit", decide, fallback=unanswered)
        return wait if answered else local(*callers, cost=cost)
