"""`gateway.upstream.cache`: the TTL cache with single-flight, its size bounds, and CachedKombo's
keys."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.observability.metrics import GatewayMetrics
from gateway.upstream.cache import CachedKombo, UpstreamCache, credential_fingerprint
from gateway.upstream.kombo import JobQuery, KomboAPIError
from tests.fake_kombo import FakeKombo, cursor_at
from tests.support import ManualClock

TTL = 30.0
INTEGRATION_A = "personio:CBNMt7dSNCzBdnRTx87dev4E"
INTEGRATION_B = "greenhouse:8mS2vY5f3bW8dJ4hZ3kTqL9p"


class Loader:
    """A `load` for `UpstreamCache.fetch` that counts its calls and can be held open."""

    def __init__(self, *, size: int = 10, error: Exception | None = None) -> None:
        self.calls = 0
        self.size = size
        self.error = error
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    def hold(self) -> Loader:
        self.release.clear()
        return self

    async def __call__(self) -> tuple[Any, int]:
        self.calls += 1
        call = self.calls
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return {"value": call}, self.size


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


@pytest.fixture
def cache(clock: ManualClock, metrics: GatewayMetrics) -> UpstreamCache:
    return UpstreamCache(TTL, max_entries=5_000, max_bytes=16 << 20, metrics=metrics, timer=clock)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop reports, e.g. "Task exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


async def settle() -> None:
    """Let every ready task and callback run."""
    for _ in range(5):
        await asyncio.sleep(0)


def lookups(metrics: GatewayMetrics, kind: str, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_cache_lookups_total", {"kind": kind, "result": result}
    )
    return value or 0.0


def coalesced(metrics: GatewayMetrics) -> float:
    return metrics.registry.get_sample_value("gateway_upstream_coalesced_total") or 0.0


# --- TTL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(0.0, id="immediately"),
        pytest.param(TTL / 2, id="half-ttl"),
        pytest.param(TTL - 0.001, id="just-before-ttl"),
    ],
)
async def test_a_repeat_within_the_ttl_is_served_from_cache(
    cache: UpstreamCache, clock: ManualClock, age: float
):
    load = Loader()
    first = await cache.fetch("k", load)
    clock.now += age
    assert await cache.fetch("k", load) == first
    assert load.calls == 1


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(TTL, id="at-ttl"),
        pytest.param(TTL + 0.001, id="just-after-ttl"),
        pytest.param(TTL * 10, id="long-after"),
    ],
)
async def test_an_entry_expires_after_the_ttl(cache: UpstreamCache, clock: ManualClock, age: float):
    load = Loader()
    await cache.fetch("k", load)
    clock.now += age
    assert cache.get("k", "page") is None
    assert await cache.fetch("k", load) == {"value": 2}
    assert load.calls == 2


async def test_a_reloaded_entry_gets_a_fresh_ttl(cache: UpstreamCache, clock: ManualClock):
    load = Loader()
    await cache.fetch("k", load)
    clock.now += TTL + 1
    await cache.fetch("k", load)
    clock.now += TTL - 1
    assert await cache.fetch("k", load) == {"value": 2}
    assert load.calls == 2


async def test_ttl_zero_loads_every_time_and_keeps_nothing(clock: ManualClock):
    cache = UpstreamCache.disabled()
    load = Loader()
    assert [await cache.fetch("k", load) for _ in range(3)] == [
        {"value": 1},
        {"value": 2},
        {"value": 3},
    ]
    assert load.calls == 3
    cache.put("other", "v", 1)
    assert cache.get("other", "page") is None


async def test_ttl_zero_does_not_share_concurrent_loads(clock: ManualClock):
    cache = UpstreamCache.disabled()
    load = Loader().hold()
    waiters = [asyncio.create_task(cache.fetch("k", load)) for _ in range(3)]
    await settle()
    load.release.set()
    assert sorted(v["value"] for v in await asyncio.gather(*waiters)) == [1, 2, 3]
    assert load.calls == 3


# --- errors -----------------------------------------------------------------------------------


async def test_an_error_is_not_cached(cache: UpstreamCache):
    failing = Loader(error=KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE"))
    with pytest.raises(KomboAPIError):
        await cache.fetch("k", failing)
    assert cache.get("k", "page") is None
    ok = Loader()
    assert await cache.fetch("k", ok) == {"value": 1}
    assert ok.calls == 1


async def test_an_error_reaches_every_concurrent_waiter_from_one_load(cache: UpstreamCache):
    error = KomboAPIError(500, message="boom")
    load = Loader(error=error).hold()
    waiters = [asyncio.create_task(cache.fetch("k", load)) for _ in range(3)]
    await settle()
    load.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert results == [error, error, error]
    assert load.calls == 1
    assert cache.get("k", "page") is None


async def test_an_error_nobody_waits_for_any_more_is_still_retrieved(
    cache: UpstreamCache, loop_errors: list[dict[str, Any]]
):
    load = Loader(error=KomboAPIError(500, message="boom")).hold()
    waiter = asyncio.create_task(cache.fetch("k", load))
    await load.started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    del waiter
    load.release.set()
    await settle()
    gc.collect()
    await settle()
    assert loop_errors == []
    assert cache.get("k", "page") is None
    assert await cache.fetch("k", Loader()) == {"value": 1}


# --- single flight ------------------------------------------------------------------------


async def test_concurrent_identical_fetches_share_one_load(
    cache: UpstreamCache, metrics: GatewayMetrics
):
    load = Loader().hold()
    waiters = [asyncio.create_task(cache.fetch("k", load)) for _ in range(5)]
    await settle()
    load.release.set()
    assert await asyncio.gather(*waiters) == [{"value": 1}] * 5
    assert load.calls == 1
    assert coalesced(metrics) == 4


async def test_concurrent_fetches_of_different_keys_load_separately(cache: UpstreamCache):
    loads = {key: Loader().hold() for key in ("a", "b", "c")}
    waiters = [asyncio.create_task(cache.fetch(key, load)) for key, load in loads.items()]
    await settle()
    for load in loads.values():
        load.release.set()
    await asyncio.gather(*waiters)
    assert [load.calls for load in loads.values()] == [1, 1, 1]


async def test_a_cancelled_first_waiter_does_not_cancel_the_load_of_the_others(
    cache: UpstreamCache,
):
    load = Loader().hold()
    first = asyncio.create_task(cache.fetch("k", load))
    await load.started.wait()
    others = [asyncio.create_task(cache.fetch("k", load)) for _ in range(2)]
    await settle()
    first.cancel()
    await settle()
    load.release.set()
    assert await asyncio.gather(*others) == [{"value": 1}] * 2
    assert first.cancelled()
    assert load.calls == 1
    assert cache.get("k", "page") == {"value": 1}


async def test_the_result_lands_in_cache_when_the_only_waiter_was_cancelled(
    cache: UpstreamCache, loop_errors: list[dict[str, Any]]
):
    load = Loader().hold()
    waiter = asyncio.create_task(cache.fetch("k", load))
    await load.started.wait()
    waiter.cancel()
    await settle()
    load.release.set()
    await settle()
    assert waiter.cancelled()
    assert cache.get("k", "page") == {"value": 1}
    assert await cache.fetch("k", load) == {"value": 1}
    assert load.calls == 1
    assert loop_errors == []


async def test_a_fetch_after_the_load_ended_does_not_join_it(
    cache: UpstreamCache, clock: ManualClock
):
    load = Loader()
    await cache.fetch("k", load)
    clock.now += TTL
    await cache.fetch("k", load)
    assert load.calls == 2


# --- refresh ----------------------------------------------------------------------------------


async def test_refresh_loads_even_when_cached_and_stores_what_it_loaded(cache: UpstreamCache):
    load = Loader()
    assert await cache.fetch("k", load) == {"value": 1}
    assert await cache.fetch("k", load, refresh=True) == {"value": 2}
    assert await cache.fetch("k", load, refresh=True) == {"value": 3}
    assert load.calls == 3
    assert await cache.fetch("k", load) == {"value": 3}
    assert load.calls == 3


async def test_refresh_does_not_join_a_load_in_flight(
    cache: UpstreamCache, metrics: GatewayMetrics
):
    stale = Loader().hold()
    ordinary = asyncio.create_task(cache.fetch("k", stale))
    await stale.started.wait()
    fresh = Loader()
    assert await cache.fetch("k", fresh, refresh=True) == {"value": 1}
    assert fresh.calls == 1
    assert coalesced(metrics) == 0
    stale.release.set()
    await ordinary


async def test_an_older_load_ending_after_a_refresh_does_not_overwrite_it(cache: UpstreamCache):
    stale = Loader().hold()
    ordinary = asyncio.create_task(cache.fetch("k", stale))
    await stale.started.wait()

    async def fresh_value() -> tuple[Any, int]:
        return {"value": "fresh"}, 10

    assert await cache.fetch("k", fresh_value, refresh=True) == {"value": "fresh"}
    stale.release.set()
    assert await ordinary == {"value": 1}
    await asyncio.sleep(0)  # let the stale load's completion callbacks run
    assert cache.get("k", "page") == {"value": "fresh"}


# --- size bounds ------------------------------------------------------------------------------


def kept(cache: UpstreamCache, keys: list[str]) -> list[str]:
    return [key for key in keys if cache.get(key, "page") is not None]


@pytest.mark.parametrize(
    ("max_entries", "max_bytes"),
    [
        pytest.param(3, 3_000, id="bytes-divisible-by-entries"),
        pytest.param(3, 10, id="bytes-not-divisible"),
        pytest.param(4, 10, id="bytes-remainder-above-floor"),
        pytest.param(3_000, 1_000_000, id="large-config"),
        pytest.param(1, 1_000, id="one-entry"),
    ],
)
async def test_max_entries_holds_with_small_entries(
    clock: ManualClock, max_entries: int, max_bytes: int
):
    cache = UpstreamCache(TTL, max_entries=max_entries, max_bytes=max_bytes, timer=clock)
    keys = [f"k{i}" for i in range(max_entries + 5)]
    for key in keys:
        cache.put(key, {"key": key}, 1)
    remaining = kept(cache, keys)
    assert len(remaining) <= max_entries
    assert keys[-1] in remaining


@pytest.mark.parametrize(
    ("sizes", "max_bytes"),
    [
        pytest.param([300] * 10, 1_000, id="equal-big-entries"),
        pytest.param([600, 100, 500, 900, 50, 400, 1_000], 1_000, id="mixed-sizes"),
        pytest.param([1_000] * 3, 1_000, id="each-fills-the-cache"),
    ],
)
async def test_max_bytes_holds_with_big_entries(
    clock: ManualClock, sizes: list[int], max_bytes: int
):
    cache = UpstreamCache(TTL, max_entries=100, max_bytes=max_bytes, timer=clock)
    keys = [f"k{i}" for i in range(len(sizes))]
    size_of = dict(zip(keys, sizes, strict=True))
    for key in keys:
        cache.put(key, {"key": key}, size_of[key])
        assert sum(size_of[k] for k in kept(cache, keys)) <= max_bytes
    remaining = kept(cache, keys)
    assert len(remaining) < len(keys)
    assert keys[-1] in remaining


async def test_an_entry_larger_than_the_whole_cache_is_not_kept(clock: ManualClock):
    cache = UpstreamCache(TTL, max_entries=10, max_bytes=1_000, timer=clock)
    cache.put("small", "s", 10)
    cache.put("huge", "h", 1_001)
    assert cache.get("huge", "page") is None
    assert cache.get("small", "page") == "s"


async def test_a_too_large_replacement_does_not_leave_the_stale_value(clock: ManualClock):
    cache = UpstreamCache(TTL, max_entries=10, max_bytes=1_000, timer=clock)
    cache.put("k", "old", 10)
    cache.put("k", "new", 5_000)
    assert cache.get("k", "page") is None


async def test_a_too_large_answer_is_returned_but_loaded_again_next_time(clock: ManualClock):
    cache = UpstreamCache(TTL, max_entries=10, max_bytes=1_000, timer=clock)
    load = Loader(size=1_001)
    assert await cache.fetch("k", load) == {"value": 1}
    assert await cache.fetch("k", load) == {"value": 2}
    assert load.calls == 2


# --- metrics ----------------------------------------------------------------------------------


async def test_lookups_count_hits_and_misses_by_kind(cache: UpstreamCache, metrics: GatewayMetrics):
    load = Loader()
    await cache.fetch("k", load)
    await cache.fetch("k", load)
    await cache.fetch("k", load)
    cache.get("job-1", "job")
    cache.put("job-2", {"id": "2"}, 1)
    cache.get("job-2", "job")
    assert lookups(metrics, "page", "miss") == 1
    assert lookups(metrics, "page", "hit") == 2
    assert lookups(metrics, "job", "miss") == 1
    assert lookups(metrics, "job", "hit") == 1


async def test_refresh_reads_nothing_so_counts_no_hit(
    cache: UpstreamCache, metrics: GatewayMetrics
):
    load = Loader()
    await cache.fetch("k", load)
    await cache.fetch("k", load, refresh=True)
    assert lookups(metrics, "page", "hit") == 0
    assert lookups(metrics, "page", "miss") == 1


async def test_coalesced_counts_only_calls_saved(cache: UpstreamCache, metrics: GatewayMetrics):
    load = Loader().hold()
    waiters = [asyncio.create_task(cache.fetch("k", load)) for _ in range(3)]
    await settle()
    load.release.set()
    await asyncio.gather(*waiters)
    await cache.fetch("k", load)
    assert coalesced(metrics) == 2
    assert lookups(metrics, "page", "miss") == 3
    assert lookups(metrics, "page", "hit") == 1


# --- CachedKombo --------------------------------------------------------------------------------


JOB_1 = "26vafvWSRmbhNcxJYqjCzuJg"
JOB_2 = "3EBbYrrG4RYmjUMwbcLDCDq7"


#: A cursor Kombo issued (an arbitrary string would be refused).
CURSOR = cursor_at(1)


@pytest.fixture
def client() -> FakeKombo:
    return FakeKombo(
        {
            INTEGRATION_A: [
                {"id": JOB_1, "integration": INTEGRATION_A},
                {"id": JOB_2, "integration": INTEGRATION_A},
            ],
            INTEGRATION_B: [{"id": JOB_1, "integration": INTEGRATION_B}],
        }
    )


def kombo_over(
    client: FakeKombo, cache: UpstreamCache, *, fingerprint: str = "fp", refresh: bool = False
) -> CachedKombo:
    return CachedKombo(client, cache, fingerprint=fingerprint, refresh=refresh)


@pytest.mark.parametrize(
    ("query", "page_size", "cursor", "expected"),
    [
        pytest.param(JobQuery(), None, None, {}, id="nothing"),
        pytest.param(JobQuery(), 50, None, {"page_size": "50"}, id="page-size"),
        pytest.param(JobQuery(), None, CURSOR, {"cursor": CURSOR}, id="cursor"),
        pytest.param(
            JobQuery(statuses=("OPEN", "CLOSED"), include_deleted=False),
            25,
            CURSOR,
            {
                "statuses": "OPEN,CLOSED",
                "include_deleted": "false",
                "page_size": "25",
                "cursor": CURSOR,
            },
            id="lists-and-booleans",
        ),
        pytest.param(
            JobQuery(updated_after=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), name_contains="dev"),
            None,
            None,
            {"updated_after": "2024-01-02T03:04:05.000Z", "name_contains": "dev"},
            id="timestamp-and-text",
        ),
        pytest.param(
            JobQuery(ids=(JOB_1, JOB_2), include_deleted=True),
            250,
            None,
            {"ids": f"{JOB_1},{JOB_2}", "include_deleted": "true", "page_size": "250"},
            id="ids",
        ),
    ],
)
async def test_list_jobs_sends_the_query_parameters_page_size_and_cursor(
    client: FakeKombo,
    cache: UpstreamCache,
    query: JobQuery,
    page_size: int | None,
    cursor: str | None,
    expected: dict[str, str],
):
    await kombo_over(client, cache).list_jobs(
        INTEGRATION_A, query, page_size=page_size, cursor=cursor
    )
    extras = {"page_size": str(page_size)} if page_size is not None else {}
    extras |= {"cursor": cursor} if cursor is not None else {}
    assert [(call.integration_id, call.params) for call in client.calls] == [
        (INTEGRATION_A, expected)
    ]
    assert expected == {**query.to_params(), **extras}


async def test_identical_list_calls_are_answered_from_cache(
    client: FakeKombo, cache: UpstreamCache
):
    first_request = kombo_over(client, cache)
    page = await first_request.list_jobs(INTEGRATION_A, JobQuery(statuses=("OPEN",)), page_size=10)
    later_request = kombo_over(client, cache)
    again = await later_request.list_jobs(INTEGRATION_A, JobQuery(statuses=("OPEN",)), page_size=10)
    assert again == page
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    ("second_integration", "second_query", "page_size", "cursor"),
    [
        pytest.param(INTEGRATION_B, JobQuery(), 10, None, id="other-integration"),
        pytest.param(INTEGRATION_A, JobQuery(status="OPEN"), 10, None, id="other-filter"),
        pytest.param(INTEGRATION_A, JobQuery(), 20, None, id="other-page-size"),
        pytest.param(INTEGRATION_A, JobQuery(), 10, CURSOR, id="other-cursor"),
        pytest.param(INTEGRATION_A, JobQuery(), None, None, id="no-page-size"),
    ],
)
async def test_different_list_calls_are_not_shared(
    client: FakeKombo,
    cache: UpstreamCache,
    second_integration: str,
    second_query: JobQuery,
    page_size: int | None,
    cursor: str | None,
):
    kombo = kombo_over(client, cache)
    await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    await kombo.list_jobs(second_integration, second_query, page_size=page_size, cursor=cursor)
    assert len(client.calls) == 2


async def test_different_credentials_never_share_pages(client: FakeKombo, cache: UpstreamCache):
    alice = kombo_over(client, cache, fingerprint=credential_fingerprint("key-alice"))
    bob = kombo_over(client, cache, fingerprint=credential_fingerprint("key-bob"))
    await alice.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    await bob.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert len(client.calls) == 2


async def test_different_credentials_never_share_a_load_in_flight(cache: UpstreamCache):
    client = FakeKombo({INTEGRATION_A: []})
    gate = client.hold()
    calls: list[Awaitable[Any]] = [
        kombo_over(client, cache, fingerprint=fp).list_jobs(INTEGRATION_A, JobQuery())
        for fp in ("fp-alice", "fp-bob")
    ]
    waiters = [asyncio.ensure_future(call) for call in calls]
    await settle()
    gate.set()
    await asyncio.gather(*waiters)
    assert len(client.calls) == 2


async def test_jobs_of_a_page_answer_by_id_lookups(client: FakeKombo, cache: UpstreamCache):
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    later_request = kombo_over(client, cache)
    job = later_request.cached_job(INTEGRATION_A, JOB_2)
    assert job == {"id": JOB_2, "integration": INTEGRATION_A}
    assert later_request.cached_job(INTEGRATION_A, "000000000000000000000000") is None
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    ("integration", "fingerprint"),
    [
        pytest.param(INTEGRATION_B, "fp", id="other-integration"),
        pytest.param(INTEGRATION_A, "other-fp", id="other-credential"),
    ],
)
async def test_primed_jobs_stay_with_their_integration_and_credential(
    client: FakeKombo, cache: UpstreamCache, integration: str, fingerprint: str
):
    await kombo_over(client, cache, fingerprint="fp").list_jobs(INTEGRATION_A, JobQuery())
    other = kombo_over(client, cache, fingerprint=fingerprint)
    assert other.cached_job(integration, JOB_1) is None
    assert other.cached_job(integration, JOB_2) is None


async def test_refresh_skips_primed_jobs_and_cached_pages_then_stores_fresh_ones(
    client: FakeKombo, cache: UpstreamCache
):
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    client.jobs[INTEGRATION_A][0]["status"] = "CLOSED"  # Kombo's data changed since
    fresh = kombo_over(client, cache, refresh=True)
    assert fresh.cached_job(INTEGRATION_A, JOB_1) is None
    page = await fresh.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert len(client.calls) == 2
    assert page["results"][0]["status"] == "CLOSED"

    later_request = kombo_over(client, cache)
    assert await later_request.list_jobs(INTEGRATION_A, JobQuery(), page_size=10) == page
    assert later_request.cached_job(INTEGRATION_A, JOB_1) == page["results"][0]
    assert len(client.calls) == 2


async def test_with_the_cache_off_every_call_reaches_kombo(client: FakeKombo, clock: ManualClock):
    kombo = kombo_over(client, UpstreamCache.disabled())
    for _ in range(3):
        await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert len(client.calls) == 3
    assert kombo.cached_job(INTEGRATION_A, JOB_1) is None


async def test_only_an_uncached_page_is_read_as_far_as_its_caller_needs(
    client: FakeKombo, cache: UpstreamCache, clock: ManualClock
):
    wanted = frozenset({"name", "status"})
    off = kombo_over(client, UpstreamCache.disabled())
    await off.list_jobs(INTEGRATION_A, JobQuery(), keys=wanted)
    # A kept (or shared) page is read whole: its later readers may want any key.
    on = kombo_over(client, cache)
    await on.list_jobs(INTEGRATION_A, JobQuery(), keys=wanted)
    assert [call.keys for call in client.calls] == [wanted, None]


async def test_a_failed_page_is_not_cached(cache: UpstreamCache):
    client = FakeKombo({INTEGRATION_A: [{"id": JOB_1}]})
    client.fail(KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE"))
    kombo = kombo_over(client, cache)
    with pytest.raises(KomboAPIError):
        await kombo.list_jobs(INTEGRATION_A, JobQuery())
    assert kombo.cached_job(INTEGRATION_A, JOB_1) is None
    await kombo.list_jobs(INTEGRATION_A, JobQuery())
    assert len(client.calls) == 2


# --- how old the answers a request used are (`fresh_for`) ----------------------------------------


async def test_a_request_that_used_nothing_cached_is_fresh_for_the_whole_ttl(
    client: FakeKombo, cache: UpstreamCache
):
    kombo = kombo_over(client, cache)
    assert kombo.fresh_for() == TTL
    await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)  # fetched now
    assert kombo.fresh_for() == TTL


async def test_a_cached_page_counts_from_when_it_was_fetched(
    client: FakeKombo, cache: UpstreamCache, clock: ManualClock
):
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    clock.now += 12
    later = kombo_over(client, cache)
    await later.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert later.fresh_for() == TTL - 12
    clock.now += 3  # the answer is built later still: its freshness keeps running down
    assert later.fresh_for() == TTL - 15


async def test_the_oldest_value_used_decides_primed_jobs_included(
    client: FakeKombo, cache: UpstreamCache, clock: ManualClock
):
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    clock.now += 20
    later = kombo_over(client, cache)
    await later.list_jobs(INTEGRATION_B, JobQuery(), page_size=10)  # fetched now
    assert later.fresh_for() == TTL
    assert later.cached_job(INTEGRATION_A, JOB_1) is not None  # primed 20 s ago
    assert later.fresh_for() == TTL - 20
    assert later.cached_job(INTEGRATION_A, "000000000000000000000000") is None
    assert later.fresh_for() == TTL - 20


async def test_a_refresh_counts_as_fetched_now(
    client: FakeKombo, cache: UpstreamCache, clock: ManualClock
):
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    clock.now += 20
    fresh = kombo_over(client, cache, refresh=True)
    await fresh.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert fresh.fresh_for() == TTL


async def test_a_joined_load_counts_from_when_the_joiner_asked(
    cache: UpstreamCache, clock: ManualClock
):
    client = FakeKombo({INTEGRATION_A: [{"id": JOB_1}]})
    gate = client.hold()
    first, second = kombo_over(client, cache), kombo_over(client, cache)
    started = asyncio.ensure_future(first.list_jobs(INTEGRATION_A, JobQuery()))
    await settle()
    clock.now += 5
    joined = asyncio.ensure_future(second.list_jobs(INTEGRATION_A, JobQuery()))
    await settle()
    gate.set()
    await asyncio.gather(started, joined)
    assert len(client.calls) == 1
    # Stored when the load ended, which is no earlier than either asked.
    assert first.fresh_for() == TTL - 5 and second.fresh_for() == TTL


async def test_with_the_cache_off_nothing_stays_fresh(client: FakeKombo):
    kombo = kombo_over(client, UpstreamCache.disabled())
    await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert kombo.fresh_for() == 0


# --- generations (Kombo's data-changed webhook) -----------------------------------------------


async def test_a_raised_generation_makes_every_credentials_pages_and_jobs_miss(
    client: FakeKombo, cache: UpstreamCache
):
    alice, bob = (kombo_over(client, cache, fingerprint=fp) for fp in ("fp-alice", "fp-bob"))
    for kombo in (alice, bob):
        await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    await alice.list_jobs(INTEGRATION_B, JobQuery(), page_size=10)
    assert len(client.calls) == 3
    client.jobs[INTEGRATION_A][0]["status"] = "CLOSED"  # Kombo's data changed, and said so
    await cache.generations.bump(INTEGRATION_A, event_id="evt_1")
    for kombo in (alice, bob):
        assert kombo.cached_job(INTEGRATION_A, JOB_1) is None
        page = await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
        assert page["results"][0]["status"] == "CLOSED"
    assert len(client.calls) == 5
    # Another integration keeps its entries.
    assert alice.cached_job(INTEGRATION_B, JOB_1) is not None
    await alice.list_jobs(INTEGRATION_B, JobQuery(), page_size=10)
    assert len(client.calls) == 5


async def test_the_dropped_entries_are_freed_at_once(client: FakeKombo, cache: UpstreamCache):
    kombo = kombo_over(client, cache)
    await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    await kombo.list_jobs(INTEGRATION_B, JobQuery(), page_size=10)
    before = len(cache._entries)
    await cache.generations.bump(INTEGRATION_A)
    # INTEGRATION_A's page and its two primed jobs are gone; B's page and job stay.
    assert len(cache._entries) == before - 3 == 2


async def test_a_call_after_a_webhook_joins_no_load_started_before_it(cache: UpstreamCache):
    client = FakeKombo({INTEGRATION_A: [{"id": JOB_1}]})
    gate = client.hold()
    before = asyncio.ensure_future(kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery()))
    await settle()
    await cache.generations.bump(INTEGRATION_A)
    after = asyncio.ensure_future(kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery()))
    await settle()
    gate.set()
    await asyncio.gather(before, after)
    assert len(client.calls) == 2
    # What the older load brought back is not served after the webhook either.
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery())
    assert len(client.calls) == 2


# --- credential_fingerprint ---------------------------------------------------------------------

KEYS = [
    "sk_live_7c1f0d7f2a4b4e0e9b1d9a3f5c6e8d20",
    "sk_live_7c1f0d7f2a4b4e0e9b1d9a3f5c6e8d21",
    "kombo-sandbox-key",
    "a" * 200,
    "ключ-с-юникодом",
]


def test_fingerprints_differ_per_key_and_are_stable():
    fingerprints = [credential_fingerprint(key) for key in KEYS]
    assert len(set(fingerprints)) == len(KEYS)
    assert fingerprints == [credential_fingerprint(key) for key in KEYS]


@pytest.mark.parametrize("key", [pytest.param(key, id=f"key{i}") for i, key in enumerate(KEYS)])
def test_a_fingerprint_never_contains_the_key(key: str):
    fingerprint = credential_fingerprint(key)
    assert key not in fingerprint
    assert key[:16] not in fingerprint


# --- stale-while-revalidate (GATEWAY_CACHE_STALE) ------------------------------------------------

STALE = 10.0


@pytest.fixture
def stale_cache(clock: ManualClock, metrics: GatewayMetrics) -> UpstreamCache:
    return UpstreamCache(
        TTL, max_entries=100, max_bytes=1 << 20, metrics=metrics, timer=clock, stale=STALE
    )


async def test_a_stale_entry_is_served_at_once_while_one_load_refreshes_it(
    stale_cache: UpstreamCache, clock: ManualClock, metrics: GatewayMetrics
):
    first = Loader()
    assert await stale_cache.fetch("k", first) == {"value": 1}
    clock.now += TTL + STALE / 2
    release, calls = asyncio.Event(), []

    async def refresh() -> tuple[Any, int]:
        calls.append(1)
        await release.wait()
        return {"value": "refreshed"}, 10

    # Two callers while the refresh is held: both answered from the stale entry, at once,
    # and only one refresh starts.
    assert await stale_cache.fetch("k", refresh) == {"value": 1}
    assert await stale_cache.fetch("k", refresh) == {"value": 1}
    await settle()
    assert calls == [1] and lookups(metrics, "page", "stale") == 2
    # Each read counted once: the first fetch missed; the stale ones are no misses too.
    assert lookups(metrics, "page", "miss") == 1
    release.set()
    await settle()
    assert await stale_cache.fetch("k", Loader()) == {"value": "refreshed"}
    assert lookups(metrics, "page", "hit") == 1  # fresh again: a plain hit


async def test_past_the_stale_window_a_caller_waits_for_the_load(
    stale_cache: UpstreamCache, clock: ManualClock
):
    await stale_cache.fetch("k", Loader())
    clock.now += TTL + STALE + 0.001
    again = Loader()
    assert await stale_cache.fetch("k", again) == {"value": 1} and again.calls == 1


async def test_by_id_reads_and_a_refresh_request_never_get_a_stale_entry(
    stale_cache: UpstreamCache, clock: ManualClock
):
    stale_cache.put("job", {"id": "job"}, 10)
    clock.now += TTL + 1
    assert stale_cache.get("job", kind="job") is None
    await stale_cache.fetch("k", Loader())
    clock.now += TTL + 1
    fresh = Loader()
    await stale_cache.fetch("k", fresh, refresh=True)  # Cache-Control: no-cache
    assert fresh.calls == 1


async def test_a_webhook_dropped_entry_is_never_served_stale(client: FakeKombo, clock: ManualClock):
    cache = UpstreamCache(TTL, max_entries=100, max_bytes=1 << 20, timer=clock, stale=STALE)
    kombo = kombo_over(client, cache)
    await kombo.list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    clock.now += TTL + 1
    await cache.generations.bump(INTEGRATION_A)  # what the webhook does
    calls = len(client.calls)
    await kombo_over(client, cache).list_jobs(INTEGRATION_A, JobQuery(), page_size=10)
    assert len(client.calls) == calls + 1  # fetched, awaited: nothing stale was served
