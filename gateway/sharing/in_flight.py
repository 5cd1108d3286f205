"""One Kombo call for identical requests on different workers and replicas.

Usage::

    flights = SharedFlights(link, keys)
    lease = await flights.claim(entry_key)
    if lease.held:                          # ours to fetch (also when Redis is away)
        async with flights.holding(entry_key, lease):  # renewed, then: landed
            ...fetch, then SharedCache.put(entry_key, value)...
    else:                                   # another process fetches it
        value = await flights.wait(entry_key, read=..., deadline=...)

The lease is a key set with `SET NX PX`: the first process to set it fetches, the
others wait for the value to land in the shared cache. Waiters are woken by a message
on one pub/sub channel (`KeySpace.ready_channel`, listened to by one connection per
process), and also read the cache every `POLL` seconds: a lost message, or a listener
reconnecting, costs at most one poll interval. A holder renews its lease while it fetches;
one that dies frees it by expiry (`LEASE`), after which a waiter claims it and fetches
itself. A waiter never waits past its
request's deadline: then, or when the lease ends without a value, `wait` returns None
and the caller fetches on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink

logger = logging.getLogger("gateway.redis")

#: Seconds between two reads of the cache by a waiter (the safety net under pub/sub).
POLL = 0.05
#: Seconds a lease lasts unless its holder renews it (it does, every third of that, for as
#: long as it fetches): short, so a holder that dies frees it soon, while its waiters
#: still have time to fetch themselves.
LEASE = 2.0

# Deletes the lease only if it is still ours: an expired lease may belong to another.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Extends the lease only if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Lease:
    #: This process fetches (it set the lease, or Redis could not be asked).
    held: bool
    token: str = ""


class SharedFlights:
    """Leases on fetching a key, and the wake-ups of those waiting for it."""

    def __init__(self, link: RedisLink, keys: KeySpace, *, lease: float = LEASE) -> None:
        self.link = link
        self.keys = keys
        self.lease_ms = max(1, math.ceil(lease * 1000))
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def claim(self, entry_key: str) -> Lease:
        """Try to become the one process fetching `entry_key`."""
        token = secrets.token_hex(8)
        lease_key = self.keys.lease(entry_key)

        async def set_lease(redis: Redis) -> bool:
            return bool(await redis.set(lease_key, token, nx=True, px=self.lease_ms))

        # Redis unavailable: fetch as if nobody else were (the in-process sharing holds).
        held = await self.link.run("lease", set_lease, fallback=True)
        return Lease(held=held, token=token)

    @contextlib.asynccontextmanager
    async def holding(self, entry_key: str, lease: Lease) -> AsyncIterator[None]:
        """Renew the lease while the block runs (the fetch), then announce the landing."""
        renewing = asyncio.create_task(self._renew(entry_key, lease)) if lease.held else None
        try:
            yield
        finally:
            if renewing is not None:
                renewing.cancel()
                await self.landed(entry_key, lease)

    async def _renew(self, entry_key: str, lease: Lease) -> None:
        lease_key = self.keys.lease(entry_key)

        async def renew(redis: Redis) -> None:
            await redis.eval(_RENEW, 1, lease_key, lease.token, self.lease_ms)

        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            await self.link.run("lease", renew, fallback=None)

    async def landed(self, entry_key: str, lease: Lease) -> None:
        """The value is in the shared cache (or the fetch failed): wake the waiters,
        free the lease."""
        lease_key = self.keys.lease(entry_key)

        async def announce(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.eval(_RELEASE, 1, lease_key, lease.token)
                pipe.publish(self.keys.ready_channel, entry_key)
                await pipe.execute()

        await self.link.run("lease", announce, fallback=None)

    async def wait(
        self,
        entry_key: str,
        *,
        read: Callable[[], Awaitable[bytes | None]],
        deadline: float,
    ) -> bytes | None:
        """The value another process is fetching, once it lands; None when the lease
        ended without one, Redis went away, or `deadline` (monotonic) came first."""
        self._listen()
        woken = asyncio.Event()
        self._waiters.setdefault(entry_key, set()).add(woken)
        lease_key = self.keys.lease(entry_key)
        try:
            while True:
                woken.clear()  # before reading: a landing announced meanwhile still wakes us
                value = await read()
                if value is not None:
                    return value
                if not await self._still_leased(lease_key):
                    return await read()  # landed just before the lease was freed?
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    await asyncio.wait_for(woken.wait(), timeout=min(POLL, left))
                except TimeoutError:
                    pass
        finally:
            waiting = self._waiters.get(entry_key)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._waiters[entry_key]

    async def _still_leased(self, lease_key: str) -> bool:
        async def exists(redis: Redis) -> bool:
            return bool(await redis.exists(lease_key))

        return await self.link.run("lease", exists, fallback=False)

    def _listen(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._run_listener())

    async def _run_listener(self) -> None:
        """Wake the waiters of each key announced on the channel, while anyone waits.
        Errors end it quietly: waiters poll, and the next waiter starts a new one."""
        await self.link.listen(
            self.keys.ready_channel, self._wake, poll=POLL, running=lambda: bool(self._waiters)
        )

    def _wake(self, entry_key: str) -> None:
        for event in self._waiters.get(entry_key, ()):
            event.set()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):
                pass
