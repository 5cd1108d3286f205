"""`gateway.sharing.generations` on its own: in-process, and as two processes would see
it through one real `redis-server` (two `Generations` over two links)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from gateway.observability.metrics import GatewayMetrics
from gateway.sharing.generations import Bumped, Generations
from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink
from tests.redis_server import RedisServer, redis_server
from tests.support import ManualClock

KEYS = KeySpace("g")
INTEGRATION = "personio:ABC"
OTHER = "greenhouse:XYZ"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
def fresh(server: RedisServer) -> RedisServer:
    server.fresh()
    return server


@pytest.fixture
async def processes(
    fresh: RedisServer,
) -> AsyncIterator[Callable[..., Generations]]:
    """Builds `Generations` over links of their own, as separate processes hold them."""
    made: list[tuple[Generations, RedisLink]] = []

    def make(clock: Callable[[], float] = time.monotonic) -> Generations:
        link = RedisLink.from_url(fresh.url, timeout=0.5, metrics=GatewayMetrics())
        generations = Generations(link, KEYS, clock=clock)
        made.append((generations, link))
        return generations

    yield make
    for generations, link in made:
        await generations.aclose()
        await link.aclose()


async def eventually(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def subscribed(server: RedisServer, count: int) -> None:
    """Until `count` listeners are subscribed to the announcements channel."""
    client = Redis.from_url(server.url)
    try:
        deadline = time.monotonic() + 3
        while True:
            [(_, listeners)] = await client.pubsub_numsub(KEYS.generations_channel)
            if listeners >= count:
                return
            assert time.monotonic() < deadline, "the listeners did not subscribe"
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def raw(server: RedisServer, call: Callable[[Redis], Awaitable[object]]) -> object:
    client = Redis.from_url(server.url)
    try:
        return await call(client)
    finally:
        await client.aclose()


# --- in-process ------------------------------------------------------------------------------


async def test_without_redis_a_bump_raises_the_epoch_and_drops_eagerly():
    generations = Generations()
    dropped: list[str] = []
    generations.on_raise(dropped.append)
    before, other = await generations.current(INTEGRATION), await generations.current(OTHER)
    assert generations.epoch(INTEGRATION) == before  # the synchronous read agrees
    assert await generations.bump(INTEGRATION, event_id="evt_1") is Bumped.RAISED
    after = await generations.current(INTEGRATION)
    assert after != before and dropped == [INTEGRATION]
    assert await generations.current(OTHER) == other  # other integrations keep theirs
    assert await generations.shared(INTEGRATION) is None  # nothing shared without Redis


async def test_epochs_are_never_reused_even_for_an_integration_seen_again():
    generations = Generations()
    seen = {await generations.current(f"i:{n}") for n in range(50)}
    for n in range(50):
        await generations.bump(f"i:{n}")
        seen.add(await generations.current(f"i:{n}"))
    assert len(seen) == 100
    # A bump of an integration this process never cached is harmless: its first epoch
    # will be new anyway.
    assert await generations.bump("never:seen") is Bumped.RAISED
    assert await generations.current("never:seen") not in seen


# --- through Redis ---------------------------------------------------------------------------


async def test_a_bump_in_one_process_reaches_another_at_once(
    processes: Callable[..., Generations], fresh: RedisServer
):
    # B's clock stands still, so it never reads the generation again: only the
    # announcement can tell it.
    a, b = processes(), processes(ManualClock())
    dropped: list[str] = []
    b.on_raise(dropped.append)
    epoch_b = await b.current(INTEGRATION)
    assert await b.shared(INTEGRATION) == 0  # no webhook yet
    other_b = await b.current(OTHER)
    await subscribed(fresh, 1)
    assert await a.bump(INTEGRATION, event_id="evt_1") is Bumped.RAISED
    await eventually(lambda: b.epoch(INTEGRATION) != epoch_b, "B's epoch to rise", 0.5)
    assert dropped == [INTEGRATION]
    generation = await b.shared(INTEGRATION)
    assert generation is not None and generation == await a.shared(INTEGRATION)
    stored = await raw(fresh, lambda r: r.get(KEYS.generation(INTEGRATION)))
    assert int(stored) == generation  # type: ignore[call-overload]
    # It starts from Redis's clock, so no restart can bring an old generation back.
    assert generation > 1_000_000_000_000_000
    assert b.epoch(OTHER) == other_b


async def test_a_repeated_event_changes_nothing_anywhere(
    processes: Callable[..., Generations], fresh: RedisServer
):
    a, b = processes(), processes(ManualClock())
    await a.current(INTEGRATION)
    before = await b.current(INTEGRATION)
    await subscribed(fresh, 2)
    assert await a.bump(INTEGRATION, event_id="evt_2") is Bumped.RAISED
    generation = await a.shared(INTEGRATION)
    await eventually(lambda: b.epoch(INTEGRATION) != before, "B to hear of it")
    await asyncio.sleep(0.1)
    epochs = (a.epoch(INTEGRATION), b.epoch(INTEGRATION))
    # Kombo redelivers, to the other replica: nothing more happens.
    assert await b.bump(INTEGRATION, event_id="evt_2") is Bumped.REPEATED
    assert await a.bump(INTEGRATION, event_id="evt_2") is Bumped.REPEATED
    await asyncio.sleep(0.1)
    assert (a.epoch(INTEGRATION), b.epoch(INTEGRATION)) == epochs
    assert (
        await raw(fresh, lambda r: r.get(KEYS.generation(INTEGRATION))) == str(generation).encode()
    )
    # The event's mark names no ID in clear and expires (a day).
    [mark] = await raw(fresh, lambda r: r.keys(f"g:{{{INTEGRATION}}}:event:*"))  # type: ignore[misc]
    assert b"evt_2" not in mark
    assert 0 < await raw(fresh, lambda r: r.ttl(mark)) <= 24 * 3600  # type: ignore[operator]


async def test_a_missed_announcement_costs_at_most_max_age(
    processes: Callable[..., Generations], fresh: RedisServer
):
    clock = ManualClock()
    b = processes(clock)
    epoch = await b.current(INTEGRATION)
    # The generation rises without an announcement (as if B's listener were away).
    await raw(fresh, lambda r: r.incr(KEYS.generation(INTEGRATION)))
    await asyncio.sleep(0.1)
    assert b.epoch(INTEGRATION) == epoch  # within max_age: what B read stands
    clock.now += 1.01
    assert b.epoch(INTEGRATION) == epoch  # the hit is not delayed: read in the background
    await eventually(lambda: b.epoch(INTEGRATION) != epoch, "the background read")
    assert await b.shared(INTEGRATION) == 1


async def test_a_generation_never_goes_back(
    processes: Callable[..., Generations], fresh: RedisServer
):
    a = processes()
    await a.current(INTEGRATION)
    await a.bump(INTEGRATION)
    first = await a.shared(INTEGRATION)
    assert first is not None
    await raw(fresh, lambda r: r.delete(KEYS.generation(INTEGRATION)))  # Redis lost it
    await a.bump(INTEGRATION)
    second = await a.shared(INTEGRATION)
    assert second is not None and second > first


async def test_redis_down_the_bump_makes_this_process_fresh_and_the_others_once_it_is_back(
    processes: Callable[..., Generations], fresh: RedisServer
):
    a, b = processes(), processes(ManualClock())  # B learns only from announcements
    epoch_a, epoch_b = await a.current(INTEGRATION), await b.current(INTEGRATION)
    before = await a.shared(INTEGRATION)
    await subscribed(fresh, 2)
    fresh.stop()
    try:
        assert await a.bump(INTEGRATION, event_id="evt_3") is Bumped.LOCAL_ONLY
        assert a.epoch(INTEGRATION) != epoch_a
        assert b.epoch(INTEGRATION) == epoch_b  # what the other processes miss, for now
        # A reads nothing of it from Redis meanwhile: what is there is as old as the
        # generation. Nor of an integration whose generation it never read.
        assert await a.shared(INTEGRATION) is None
        assert await a.shared(OTHER) is None
    finally:
        fresh.start()
    # Redis answers again: A raises the generation it could not, B hears of it.
    await eventually(lambda: b.epoch(INTEGRATION) != epoch_b, "B to catch up", timeout=10)
    after = await a.shared(INTEGRATION)
    assert after is not None and before is not None and after > before


async def test_cached_blind_while_redis_was_down_then_dropped_once_it_answers(
    processes: Callable[..., Generations], fresh: RedisServer
):
    clock = ManualClock()
    fresh.stop()
    try:
        b = processes(clock)
        blind = await b.current(INTEGRATION)  # Redis is down: entries cached blind
    finally:
        fresh.start()
    clock.now += 1.01
    await b.current(INTEGRATION)
    await eventually(lambda: b.epoch(INTEGRATION) != blind, "the blind epoch to end")
    assert await b.shared(INTEGRATION) == 0


async def test_the_listener_comes_back_after_redis_restarts(
    processes: Callable[..., Generations], fresh: RedisServer
):
    a, b = processes(), processes(ManualClock())  # B learns only from announcements
    await b.current(INTEGRATION)
    await subscribed(fresh, 1)
    fresh.stop()
    fresh.start()
    await subscribed(fresh, 1)  # B subscribed again by itself
    epoch = b.epoch(INTEGRATION)  # (reads the generation once more: all were marked old)
    await asyncio.sleep(0.1)
    epoch = b.epoch(INTEGRATION)
    await a.current(INTEGRATION)
    await a.bump(INTEGRATION, event_id="evt_4")
    await eventually(lambda: b.epoch(INTEGRATION) != epoch, "the announcement", timeout=8)


async def test_a_foreign_value_in_the_generation_key_leaves_redis_out(
    processes: Callable[..., Generations], fresh: RedisServer
):
    await raw(fresh, lambda r: r.set(KEYS.generation(INTEGRATION), b"not a number"))
    a = processes()
    await a.current(INTEGRATION)  # no error: the value is not trusted, that is all
    assert await a.shared(INTEGRATION) is None
