"""The cache every worker and replica shares (level 2, behind each process's own).

Usage::

    shared = SharedCache(link, ttl=30.0)
    await shared.put(key, payload)                  # bytes; expires with Redis's PX
    payload = await shared.get(key, kind="page")    # None: a miss, or Redis unavailable
    found = await shared.get_many(keys, kind="job") # one MGET

Values are bytes the caller encoded; TTLs are Redis's own (`PX`), so nothing outlives
`GATEWAY_CACHE_TTL` however long a process keeps running. Errors are never stored
(callers put only answers). A value larger than `MAX_VALUE_BYTES` is not shared: moving
megabytes through Redis on every miss costs more than it saves, and a slow transfer
must not look like a failing Redis to the breaker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from gateway.observability.metrics import GatewayMetrics
from gateway.sharing.link import RedisLink

#: The largest value shared (a 250-job page is ~0.9 MB as Kombo sends it).
MAX_VALUE_BYTES = 2 * 1024 * 1024


class SharedCache:
    """Get and put bytes under keys of `KeySpace`, with the cache's TTL."""

    def __init__(self, link: RedisLink, *, ttl: float, metrics: GatewayMetrics) -> None:
        self.link = link
        self.ttl_ms = max(1, math.ceil(ttl * 1000))
        self._metrics = metrics

    async def get(self, key: str, *, kind: str) -> bytes | None:
        """The value at `key`, counted as a hit or miss of `kind`."""
        value = await self.read(key)
        self._count(kind, value is not None)
        return value

    async def read(self, key: str) -> bytes | None:
        """`get`, uncounted: a second look within one lookup (a lease's re-read, a
        waiter's polls), so that each lookup counts once."""

        async def read(redis: Redis) -> bytes | None:
            return _bytes(await redis.get(key))

        return await self.link.run("cache_get", read, fallback=None)

    async def get_many(self, keys: Sequence[str], *, kind: str) -> list[bytes | None]:
        """Values of `keys` in order, None for each missing one (all None without Redis)."""
        if not keys:
            return []

        async def read(redis: Redis) -> list[bytes | None]:
            return [_bytes(value) for value in await redis.mget(keys)]

        missing: list[bytes | None] = [None] * len(keys)
        values = await self.link.run("cache_get", read, fallback=missing)
        for value in values:
            self._count(kind, value is not None)
        return values

    async def put(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store `value` for the cache's TTL, or for `ttl` seconds (a shorter life: a
        whole answer lives no longer than the upstream answers it was built from)."""
        if len(value) > MAX_VALUE_BYTES:
            return
        px = self.ttl_ms if ttl is None else max(1, math.ceil(ttl * 1000))
        await self.link.run("cache_put", lambda redis: redis.set(key, value, px=px), fallback=None)

    async def put_many(self, items: Mapping[str, bytes]) -> None:
        """Store several values in one round trip (a page's primed jobs)."""
        kept = {key: value for key, value in items.items() if len(value) <= MAX_VALUE_BYTES}
        if not kept:
            return

        async def put_all(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for key, value in kept.items():
                    pipe.set(key, value, px=self.ttl_ms)
                await pipe.execute()

        await self.link.run("cache_put", put_all, fallback=None)

    def _count(self, kind: str, hit: bool) -> None:
        self._metrics.shared_cache_lookups.labels(kind=kind, result="hit" if hit else "miss").inc()


def _bytes(value: object) -> bytes | None:
    return value if isinstance(value, bytes) else None
