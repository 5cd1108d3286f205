"""Per-integration data generations: how Kombo's `data-changed` webhook makes every cached
answer of an integration unreachable at once, in every worker and replica, without
finding a single one of them.

Usage (one per process; `link` None: this process alone)::

    generations = Generations(link, keys)
    generations.on_raise(cache.drop_integration)      # level 1 frees memory eagerly
    epoch = await generations.current(integration)    # in every level-1 key
    epoch = generations.epoch(integration)            # the same, for a synchronous read
    generation = await generations.shared(integration)  # in every level-2 key; None: skip Redis
    outcome = await generations.bump(integration, event_id="evt_1")   # the webhook
    await generations.aclose()

Two numbers per integration:

- The *generation*, in Redis (`<prefix>:{integration}:generation`), part of every
  level-2 key. The webhook raises it with one script (one round trip), which also marks
  the event handled (`SET NX EX`: a redelivery, to any replica, does nothing) and
  announces the new generation on `<prefix>:generations`. Entries of the old generation
  are never read again and expire by their TTL. It never goes back: a missing key (a
  Redis restarted, or the key evicted) starts again from Redis's clock in microseconds,
  above any value it held before, so an old generation, and the entries stored under
  it, can never come back.
- The *epoch*, this process's own, part of every level-1 key. It rises whenever this
  process learns that the generation rose (an announcement, or a read), and when a
  webhook reaches this process while Redis cannot be told: then this process is fresh
  at once, reads nothing of that integration from Redis, and raises the generation as
  soon as Redis answers again (the others catch up then: docs/operations.md). Every
  epoch comes from one counter of the process, so none is ever reused, even for an
  integration forgotten and seen again.

How fresh: an announcement reaches every process at once (one pub/sub connection per
process). In case one is missed (a listener reconnecting, a message lost), a process
uses a generation it read for at most `MAX_AGE` seconds, then reads it again: in the
background when a level-1 hit notices (the hit is not delayed), before its first use
for an integration (level-2 keys need it). Level-1 keys need no Redis: a hit costs a
dict lookup, and a clock read when Redis is configured.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink

logger = logging.getLogger("gateway.redis")

#: Seconds a generation read from Redis is used before it is read again: what a missed
#: announcement costs at most.
MAX_AGE = 1.0
#: Seconds an event ID is remembered as handled (Kombo redelivers within hours, if at all).
EVENT_MEMORY = 24 * 3600
#: Integrations whose state a process keeps; past it, it forgets them all (their level-1
#: entries become unreachable), so made-up integration IDs cannot grow memory.
MAX_INTEGRATIONS = 100_000
#: Seconds one read of the listener's connection waits for a message. It bounds how long
#: closing takes: redis-py may swallow the listener's cancellation inside a read (seen
#: with redis 8.1 on Python 3.11), so the listener also checks a flag between reads.
LISTEN_POLL = 0.25
#: Seconds before the listener connects again after an error (Redis away).
RECONNECT = 1.0

# KEYS: the event's mark, the generation. ARGV: seconds the mark lasts ('0': no event
# ID, no mark), the announcement channel, the integration. Returns the new generation
# as text (a Lua number would print as 1.79e+15), or '-1' when the event was handled
# before (by any process).
_BUMP = """
if ARGV[1] ~= '0' and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return '-1'
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local clock = redis.call('TIME')
  redis.call('SET', KEYS[2], clock[1] .. string.format('%06d', clock[2]))
end
redis.call('INCR', KEYS[2])
local generation = redis.call('GET', KEYS[2])
redis.call('PUBLISH', ARGV[2], generation .. ' ' .. ARGV[3])
return generation
"""


class Bumped(enum.Enum):
    """What `Generations.bump` did."""

    #: Raised: in every process (through Redis), or in the only one (no Redis configured).
    RAISED = "raised"
    #: The event was handled before (by this or another process): nothing changed.
    REPEATED = "repeated"
    #: Redis is configured but could not be told: only this process is fresh.
    LOCAL_ONLY = "local_only"


@dataclass(slots=True)
class _State:
    epoch: int
    #: The generation last read from Redis (None: not read yet, or Redis did not answer).
    shared: int | None = None
    #: When it was last read (monotonic), or tried.
    read_at: float = -math.inf
    #: Entries may have been cached under `epoch` while `shared` was unknown: learning
    #: the generation then raises the epoch (a webhook may have been missed meanwhile).
    blind: bool = False


class Generations:
    """The generation and epoch of every integration this process serves."""

    def __init__(
        self,
        link: RedisLink | None = None,
        keys: KeySpace | None = None,
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if link is not None and keys is None:
            raise ValueError("Generations with Redis needs its KeySpace")
        self.link = link
        self.keys = keys or KeySpace("")
        self.max_age = max_age
        self._clock = clock
        self._epochs = itertools.count(1)
        self._states: dict[str, _State] = {}
        self._on_raise: list[Callable[[str], None]] = []
        self._reads: dict[str, asyncio.Task[None]] = {}
        #: Integrations whose webhook Redis missed: their generation is raised (and
        #: announced) as soon as Redis answers; until then, Redis's entries of them are
        #: not read (they are as old as the generation).
        self._unannounced: set[str] = set()
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self._script = link.client.register_script(_BUMP) if link is not None else None

    def on_raise(self, callback: Callable[[str], None]) -> None:
        """Call `callback(integration)` whenever an integration's epoch rises."""
        self._on_raise.append(callback)

    def epoch(self, integration_id: str) -> int:
        """The integration's epoch, for a level-1 read that cannot wait: a dict lookup.
        A generation older than `max_age` is read again in the background."""
        state = self._states.get(integration_id)
        if state is None:
            state = self._new_state(integration_id)
        if self.link is not None and self._clock() - state.read_at > self.max_age:
            self._read_soon(integration_id)
        return state.epoch

    async def current(self, integration_id: str) -> int:
        """The integration's epoch, before anything is cached under it: the first time,
        once the generation was read (so nothing is cached blind while Redis answers)."""
        state = self._states.get(integration_id)
        if state is None:
            state = self._new_state(integration_id)
        if self.link is None:
            return state.epoch
        self._listen()
        stale = self._clock() - state.read_at > self.max_age
        if state.shared is None:
            reading = self._reads.get(integration_id)
            if reading is None and stale:
                reading = self._read_soon(integration_id)
            if reading is not None:
                await asyncio.shield(reading)
                state = self._states.get(integration_id) or state
            if state.shared is None:  # Redis did not answer: cache blind, check later
                state.blind = True
        elif stale:
            self._read_soon(integration_id)
        return state.epoch

    async def shared(self, integration_id: str) -> int | None:
        """The integration's generation for level-2 keys; None without Redis, or when it
        could not be read (the caller then leaves Redis out: a key without the right
        generation could serve what a webhook dropped)."""
        if self.link is None:
            return None
        await self.current(integration_id)
        state = self._states.get(integration_id)
        if state is None or integration_id in self._unannounced:
            return None
        return state.shared

    async def bump(self, integration_id: str, *, event_id: str | None = None) -> Bumped:
        """Kombo says the integration's data changed: raise its generation everywhere
        (one round trip), unless event `event_id` was handled before. Redis unavailable:
        this process alone raises its epoch now, and the generation once Redis answers
        again (the other processes serve what they hold until then)."""
        if self.link is None:
            self._raise(integration_id)
            return Bumped.RAISED
        self._listen()
        generation = await self._raise_in_redis(integration_id, event_id)
        if generation is None:
            self._raise(integration_id)
            self._unannounced.add(integration_id)
            return Bumped.LOCAL_ONLY
        if generation < 0:
            return Bumped.REPEATED
        self._observe(integration_id, generation, announced=True)
        return Bumped.RAISED

    async def _raise_in_redis(self, integration_id: str, event_id: str | None) -> int | None:
        """The script: the new generation, -1 when the event was handled before, None
        when Redis did not answer."""
        assert self.link is not None and self._script is not None
        script = self._script
        keys = [
            self.keys.event(integration_id, event_id or ""),
            self.keys.generation(integration_id),
        ]
        args: list[str | int] = [
            EVENT_MEMORY if event_id else 0,
            self.keys.generations_channel,
            integration_id,
        ]

        async def raise_generation(redis: Redis) -> int:
            return int(await script(keys=keys, args=args, client=redis))

        return await self.link.run("generation", raise_generation, fallback=None)

    # --- state ---------------------------------------------------------------------------

    def _new_state(self, integration_id: str) -> _State:
        if len(self._states) >= MAX_INTEGRATIONS:
            self._states.clear()
        state = self._states[integration_id] = _State(epoch=next(self._epochs))
        return state

    def _raise(self, integration_id: str) -> None:
        """A new epoch: every level-1 entry of the integration is unreachable from now."""
        state = self._states.get(integration_id)
        if state is None:
            return  # nothing of it cached here; its first epoch will be new anyway
        state.epoch = next(self._epochs)
        state.blind = False
        for callback in self._on_raise:
            callback(integration_id)

    def _observe(self, integration_id: str, generation: int, *, announced: bool) -> None:
        """A generation read from Redis or announced: raise the epoch if it rose (or if
        it was unknown while entries were cached), never go back."""
        state = self._states.get(integration_id)
        if state is None:
            return
        state.read_at = self._clock()
        if state.shared is not None and generation <= state.shared:
            return
        rose = state.shared is not None or state.blind or announced
        state.shared = generation
        if rose:
            self._raise(integration_id)

    def _read_soon(self, integration_id: str) -> asyncio.Task[None]:
        """Read the generation in the background (one read per integration at a time)."""
        reading = self._reads.get(integration_id)
        if reading is None:
            state = self._states.get(integration_id)
            if state is not None:
                state.read_at = self._clock()  # tried now: not again within max_age
            reading = asyncio.get_running_loop().create_task(self._read(integration_id))
            self._reads[integration_id] = reading
            reading.add_done_callback(lambda _: self._reads.pop(integration_id, None))
        return reading

    async def _read(self, integration_id: str) -> None:
        """Read the generation; or, after a bump Redis missed, raise it now."""
        assert self.link is not None
        if integration_id in self._unannounced:
            raised = await self._raise_in_redis(integration_id, None)
            if raised is not None:
                self._unannounced.discard(integration_id)
                self._observe(integration_id, raised, announced=True)
            return
        key = self.keys.generation(integration_id)

        async def read(redis: Redis) -> int | None:
            value = await redis.get(key)
            if value is None:
                return 0  # no webhook yet (or the key was lost: the next one starts high)
            try:
                return int(value)
            except ValueError:
                return None  # not ours to trust: leave Redis out, as when it is away

        generation = await self.link.run("generation", read, fallback=None)
        if generation is not None:
            self._observe(integration_id, generation, announced=False)

    # --- announcements -------------------------------------------------------------------

    def _listen(self) -> None:
        if self._closing:
            return
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._run_listener())

    async def _run_listener(self) -> None:
        """Apply every announced generation, for the process's life; reconnect after
        errors. Once (re)subscribed, every generation counts as old: what was announced
        while nobody listened is read again on next use."""
        assert self.link is not None
        while not self._closing:
            await self.link.listen(
                self.keys.generations_channel,
                self._announced,
                poll=LISTEN_POLL,
                running=lambda: not self._closing,
                on_subscribed=self._forget_reads,
                on_tick=self._announce_missed,
            )
            if not self._closing:
                await asyncio.sleep(RECONNECT)

    def _forget_reads(self) -> None:
        """(Re)subscribed: what was announced while nobody listened is read on next use."""
        for state in self._states.values():
            state.read_at = -math.inf

    def _announce_missed(self) -> None:
        """Redis answers (the listener's connection does): tell the others what it
        missed, retrying while it fails."""
        for integration_id in list(self._unannounced):
            self._read_soon(integration_id)

    def _announced(self, text: str) -> None:
        generation, _, integration_id = text.partition(" ")
        if generation.isdigit() and integration_id:
            self._observe(integration_id, int(generation), announced=True)

    async def aclose(self) -> None:
        self._closing = True
        tasks = [*self._reads.values(), *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
