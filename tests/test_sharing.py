"""The Redis side on its own, against a real `redis-server`: breaker, link, shared cache,
leases, the GCRA limiter and the Kombo back-off (fake clocks where time matters)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trustme
from redis.asyncio import Redis

from gateway.http.limits import RateLimiter
from gateway.observability.metrics import GatewayMetrics
from gateway.sharing.backoff import MAX_HOLD, SharedBackoff
from gateway.sharing.breaker import BreakerState, CircuitBreaker
from gateway.sharing.generations import Bumped, Generations
from gateway.sharing.in_flight import SharedFlights
from gateway.sharing.keys import KeySpace, digest
from gateway.sharing.link import RedisLink
from gateway.sharing.rate_limit import SharedRateLimiter
from gateway.sharing.shared_cache import MAX_VALUE_BYTES, SharedCache
from gateway.upstream.kombo import JobsPage
from gateway.upstream.shared_pages import SharedPages
from tests.redis_server import RedisServer, free_port, redis_server
from tests.support import ManualClock

#: Bounds how long things take: `make test` runs it alone, after the rest.
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
async def link(server: RedisServer) -> AsyncIterator[RedisLink]:
    server.fresh()
    metrics = GatewayMetrics()
    link = RedisLink.from_url(server.url, timeout=0.5, metrics=metrics)
    yield link
    await link.aclose()


def metric(link: RedisLink, name: str, **labels: str) -> float:
    value = link.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


KEYS = KeySpace("t")


# --- breaker ---------------------------------------------------------------------------------


def test_the_breaker_opens_after_failures_in_a_row_and_closes_after_a_trial():
    clock = ManualClock()
    breaker = CircuitBreaker(failures=3, cooldown=5.0, clock=clock)
    assert not breaker.failed() and not breaker.failed()
    breaker.succeeded()  # the count is of failures in a row
    assert [breaker.failed() for _ in range(3)] == [False, False, True]
    assert breaker.state is BreakerState.OPEN and not breaker.allows()
    clock.now += 5.0
    assert breaker.allows()  # the one trial call
    assert breaker.state is BreakerState.HALF_OPEN and not breaker.allows()
    assert breaker.failed() is False  # opened again (it was not closed)
    assert not breaker.allows()
    clock.now += 5.0
    assert breaker.allows() and breaker.succeeded() is True
    assert breaker.state is BreakerState.CLOSED and breaker.allows()


# --- keys ------------------------------------------------------------------------------------


def test_keys_hold_no_secret_and_share_one_integrations_hash_tag():
    credential = digest("ks_live_SECRET")
    page = KEYS.page("personio:ABC", 0, credential, "GET /ats/jobs?ids=1")
    job = KEYS.job("personio:ABC", 0, credential, "job-1")
    event = KEYS.event("personio:ABC", "evt_1")
    assert "SECRET" not in page + job and "ids=1" not in page and "evt_1" not in event
    for key in (page, job, event, KEYS.lease(page), KEYS.generation("personio:ABC")):
        assert key.startswith("t:{personio:ABC}:")
    assert KEYS.page("personio:ABC", 0, credential, "x") != KEYS.page(
        "greenhouse:ABC", 0, credential, "x"
    )
    assert KEYS.page("personio:ABC", 0, digest("other"), "x") != KEYS.page(
        "personio:ABC", 0, credential, "x"
    )
    # Another generation, another key: a webhook's raise leaves every old entry unread.
    assert KEYS.page("personio:ABC", 1, credential, "x") != KEYS.page(
        "personio:ABC", 0, credential, "x"
    )
    assert KEYS.job("personio:ABC", 1, credential, "j") != KEYS.job(
        "personio:ABC", 0, credential, "j"
    )
    # A brace would end the hash tag early: such an ID is digested instead.
    assert "}" not in KEYS.backoff("odd}id").split("{", 1)[1][: -len(":backoff") - 1]


# --- the link --------------------------------------------------------------------------------


async def test_the_link_falls_back_when_redis_dies_logs_once_and_resumes(
    server: RedisServer, caplog: pytest.LogCaptureFixture
):
    server.flush()
    metrics = GatewayMetrics()
    clock = ManualClock()
    link = RedisLink(
        Redis.from_url(server.url, socket_timeout=0.2, socket_connect_timeout=0.2, retry=None),
        timeout=0.2,
        metrics=metrics,
        breaker=CircuitBreaker(failures=2, cooldown=1.0, clock=clock),
    )
    try:
        assert await link.run("ping", lambda redis: redis.ping(), fallback=False) is True
        server.stop()
        with caplog.at_level(logging.WARNING, logger="gateway.redis"):
            answers = [await link.run("ping", lambda r: r.ping(), fallback="fb") for _ in range(5)]
        assert answers == ["fb"] * 5
        assert not link.up
        assert metrics.registry.get_sample_value("gateway_redis_up") == 0
        # Two failures opened it; the other three calls were skipped, not attempted.
        errors = metrics.registry.get_sample_value(
            "gateway_redis_errors_total", {"operation": "ping"}
        )
        assert errors == 2
        assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 1
        server.start()
        assert await link.run("ping", lambda r: r.ping(), fallback="fb") == "fb"  # cooling down
        clock.now += 1.0
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gateway.redis"):
            assert await link.run("ping", lambda r: r.ping(), fallback="fb") is True
        assert link.up and metrics.registry.get_sample_value("gateway_redis_up") == 1
        assert [r.getMessage() for r in caplog.records] == ["Redis answers again: sharing resumed"]
    finally:
        await link.aclose()


async def test_an_unexpected_error_on_the_way_to_redis_falls_back_and_is_logged(
    link: RedisLink, caplog: pytest.LogCaptureFixture
):
    """redis-py has raised AttributeError and RuntimeError from connections torn down
    mid-read: whatever a Redis operation raises, the request goes on without Redis."""

    async def torn_down(redis: Redis) -> bytes:
        raise AttributeError("'NoneType' object has no attribute 'feed'")

    with caplog.at_level(logging.ERROR, logger="gateway.redis"):
        assert await link.run("cache_get", torn_down, fallback=None) is None
    assert "cache_get failed unexpectedly" in caplog.text and "AttributeError" in caplog.text
    assert await link.run("ping", lambda r: r.ping(), fallback=False) is True


async def test_a_slow_redis_costs_at_most_the_timeout(link: RedisLink):
    started = time.monotonic()
    # DEBUG SLEEP blocks the server for 1 s; the link gives up after its 0.5 s.
    answer = await link.run(
        "sleep", lambda r: r.execute_command("DEBUG", "SLEEP", "1"), fallback="fb"
    )
    assert answer == "fb" and time.monotonic() - started < 0.9
    await asyncio.sleep(0.6)  # let the server wake before the next test


async def test_the_url_and_its_password_never_reach_the_log(caplog: pytest.LogCaptureFixture):
    metrics = GatewayMetrics()
    link = RedisLink.from_url(
        "redis://:hunter2-password@127.0.0.1:1/0", timeout=0.1, metrics=metrics
    )
    with caplog.at_level(logging.DEBUG):
        for _ in range(4):
            await link.run("ping", lambda r: r.ping(), fallback=None)
    await link.aclose()
    assert caplog.records and "hunter2" not in caplog.text


# --- the shared cache -------------------------------------------------------------------------


async def test_shared_values_expire_with_the_cache_ttl(link: RedisLink):
    cache = SharedCache(link, ttl=0.2, metrics=link.metrics)
    await cache.put("t:{i:1}:page:a", b"payload")
    assert await cache.get("t:{i:1}:page:a", kind="page") == b"payload"
    assert 0 < await link.client.pttl("t:{i:1}:page:a") <= 200
    await asyncio.sleep(0.3)
    assert await cache.get("t:{i:1}:page:a", kind="page") is None
    assert metric(link, "gateway_shared_cache_lookups_total", kind="page", result="hit") == 1
    assert metric(link, "gateway_shared_cache_lookups_total", kind="page", result="miss") == 1


async def test_a_value_may_expire_sooner_than_the_cache_ttl(link: RedisLink):
    cache = SharedCache(link, ttl=30, metrics=link.metrics)
    await cache.put("t:{i:1}:response:a", b"answer", ttl=0.15)
    assert 0 < await link.client.pttl("t:{i:1}:response:a") <= 150
    await asyncio.sleep(0.25)
    assert await cache.get("t:{i:1}:response:a", kind="response") is None


async def test_many_values_in_one_round_trip_and_oversized_ones_are_not_shared(link: RedisLink):
    cache = SharedCache(link, ttl=30, metrics=link.metrics)
    await cache.put_many({"t:{i:1}:job:a": b"A", "t:{i:1}:job:b": b"B"})
    await cache.put("t:{i:1}:page:huge", b"x" * (MAX_VALUE_BYTES + 1))
    found = await cache.get_many(["t:{i:1}:job:a", "t:{i:1}:job:x", "t:{i:1}:job:b"], kind="job")
    assert found == [b"A", None, b"B"]
    assert await cache.get("t:{i:1}:page:huge", kind="page") is None


# --- in-flight leases --------------------------------------------------------------------------


async def test_one_process_holds_the_lease_and_a_waiter_wakes_when_the_value_lands(
    link: RedisLink,
):
    flights = SharedFlights(link, KEYS, lease=5.0)
    other = SharedFlights(link, KEYS, lease=5.0)  # another process's
    cache = SharedCache(link, ttl=30, metrics=link.metrics)
    key = KEYS.page("i:1", 0, "fp", "q")
    mine = await flights.claim(key)
    theirs = await other.claim(key)
    assert mine.held and not theirs.held

    async def land() -> None:
        await asyncio.sleep(0.2)
        await cache.put(key, b"answer")
        await flights.landed(key, mine)

    started = time.monotonic()
    landing = asyncio.create_task(land())
    value = await other.wait(
        key, read=lambda: cache.get(key, kind="page"), deadline=time.monotonic() + 5
    )
    await landing
    assert value == b"answer" and time.monotonic() - started < 1.0
    assert (await other.claim(key)).held  # the lease was freed
    await other.aclose()
    await flights.aclose()


async def test_a_holder_that_dies_frees_its_lease_by_expiry(link: RedisLink):
    dying = SharedFlights(link, KEYS, lease=0.3)
    waiter = SharedFlights(link, KEYS, lease=0.3)
    cache = SharedCache(link, ttl=30, metrics=link.metrics)
    key = KEYS.page("i:1", 0, "fp", "q2")
    assert (await dying.claim(key)).held  # and never lands
    started = time.monotonic()
    value = await waiter.wait(
        key, read=lambda: cache.get(key, kind="page"), deadline=time.monotonic() + 5
    )
    assert value is None and 0.2 < time.monotonic() - started < 1.5
    assert (await waiter.claim(key)).held
    await waiter.aclose()


async def test_a_waiter_never_waits_past_its_deadline(link: RedisLink):
    holder = SharedFlights(link, KEYS, lease=30)
    waiter = SharedFlights(link, KEYS, lease=30)
    cache = SharedCache(link, ttl=30, metrics=link.metrics)
    key = KEYS.page("i:1", 0, "fp", "q3")
    assert (await holder.claim(key)).held
    started = time.monotonic()
    value = await waiter.wait(
        key, read=lambda: cache.get(key, kind="page"), deadline=time.monotonic() + 0.3
    )
    assert value is None and time.monotonic() - started < 0.8
    await waiter.aclose()


# --- the shared rate limit --------------------------------------------------------------------


async def test_the_shared_limit_admits_a_burst_then_the_rate_like_the_local_bucket(link: RedisLink):
    limiter = SharedRateLimiter(link, KEYS, rate=5, burst=3, local=RateLimiter(5, 3))
    other = SharedRateLimiter(link, KEYS, rate=5, burst=3, local=RateLimiter(5, 3))
    answers = [await limiter.acquire("token:web"), await other.acquire("token:web")]
    answers.append(await limiter.acquire("token:web"))
    refused = await other.acquire("token:web")  # the fourth, on either process
    assert answers == [None, None, None]
    assert refused is not None and 0.1 < refused <= 0.2
    assert await limiter.acquire("token:other") is None  # callers are separate
    await asyncio.sleep(refused)
    assert await other.acquire("token:web") is None


async def test_several_callers_pay_together_or_not_at_all_and_wait_takes_nothing(
    link: RedisLink,
):
    limiter = SharedRateLimiter(link, KEYS, rate=1, burst=2, local=RateLimiter(1, 2))
    assert await limiter.acquire("key:a", "addr:1", cost=2) is None
    assert await limiter.acquire("key:b", "addr:1") is not None  # addr:1 is spent
    assert await limiter.acquire("key:b") is None  # and key:b paid nothing above
    assert await limiter.wait("key:c") is None
    assert await limiter.wait("key:c") is None  # asking twice took nothing
    assert await limiter.acquire("key:c", cost=5) is None  # a cost over the burst is capped


async def test_the_limiter_falls_back_to_the_process_bucket_without_redis(server: RedisServer):
    metrics = GatewayMetrics()
    link = RedisLink.from_url(server.url, timeout=0.2, metrics=metrics)
    limiter = SharedRateLimiter(link, KEYS, rate=1, burst=1, local=RateLimiter(1, 1))
    server.stop()
    try:
        assert await limiter.acquire("token:web") is None
        assert await limiter.acquire("token:web") is not None  # the local bucket holds
    finally:
        server.start()
        await link.aclose()


# --- the Kombo back-off ----------------------------------------------------------------------


async def test_a_hold_reaches_other_processes_and_is_only_ever_extended(link: RedisLink):
    here = SharedBackoff(link, KEYS)
    there = SharedBackoff(link, KEYS)
    await here.hold("personio:X", 2.0)
    assert 1.5 < await there.remaining("personio:X") <= 2.0
    await there.hold("personio:X", 0.5)  # shorter: changes nothing
    assert await here.remaining("personio:X") > 1.5
    assert await there.remaining("greenhouse:Y") == 0.0
    await here.hold("personio:X", 10 * MAX_HOLD)  # a hostile Retry-After is capped
    assert await there.remaining("personio:X") <= MAX_HOLD


async def test_a_process_keeps_its_own_holds_without_redis():
    clock = ManualClock()
    backoff = SharedBackoff(None, KEYS, clock=clock)
    await backoff.hold("personio:X", 3.0)
    assert await backoff.remaining("personio:X") == 3.0
    clock.now += 3.0
    assert await backoff.remaining("personio:X") == 0.0


async def test_a_live_holder_keeps_its_lease_past_the_lease_time(link: RedisLink):
    holder = SharedFlights(link, KEYS, lease=0.3)
    other = SharedFlights(link, KEYS, lease=0.3)
    key = KEYS.page("i:1", 0, "fp", "slow")
    lease = await holder.claim(key)
    async with holder.holding(key, lease):
        await asyncio.sleep(0.8)  # a slow fetch: renewed every 0.1 s
        assert not (await other.claim(key)).held
    assert (await other.claim(key)).held  # landed: freed at once
    await holder.aclose()


# --- the ACL a gateway needs (as deploy/compose.yaml documents it) ------------------------------


def documented_acl() -> list[str]:
    """The gateway's ACL user, as deploy/compose.yaml starts Redis with it."""
    compose = (Path(__file__).resolve().parent.parent / "deploy" / "compose.yaml").read_text()
    [line] = [line for line in compose.splitlines() if "--user kombo-gateway on" in line]
    return line.replace("${REDIS_PASSWORD}", "acl-password").split()


async def test_the_documented_acl_is_all_the_gateway_needs():
    arguments = ("--user", "default", "off", *documented_acl())
    with redis_server(arguments=arguments) as server:
        metrics = GatewayMetrics()
        url = f"redis://kombo-gateway:acl-password@127.0.0.1:{server.port}/0"
        link = RedisLink.from_url(url, timeout=1.0, metrics=metrics)
        keys = KeySpace("kgw")
        cache = SharedCache(link, ttl=30, metrics=metrics)
        key = keys.page("personio:X", 0, "fp", "q")
        flights, other = SharedFlights(link, keys), SharedFlights(link, keys)
        lease = await flights.claim(key)
        waiting = asyncio.create_task(
            other.wait(key, read=lambda: cache.get(key, kind="page"), deadline=time.monotonic() + 5)
        )
        async with flights.holding(key, lease):
            await cache.put(key, b"page")
            await cache.put_many({keys.job("personio:X", 0, "fp", "1"): b"job"})
        assert await waiting == b"page"
        assert await cache.get_many([keys.job("personio:X", 0, "fp", "1")], kind="job") == [b"job"]
        limiter = SharedRateLimiter(link, keys, rate=1, burst=1, local=RateLimiter(1, 1))
        assert await limiter.acquire("token:a") is None
        assert await limiter.acquire("token:a") is not None
        backoff = SharedBackoff(link, keys)
        await backoff.hold("personio:X", 5)
        assert await SharedBackoff(link, keys).remaining("personio:X") > 4
        generations = Generations(link, keys)
        await generations.current("personio:X")
        assert await generations.bump("personio:X", event_id="evt_1") is Bumped.RAISED
        assert await generations.bump("personio:X", event_id="evt_1") is Bumped.REPEATED
        assert (await generations.shared("personio:X") or 0) > 0
        await generations.aclose()
        errors = metrics.registry.get_sample_value(
            "gateway_redis_errors_total", {"operation": "lease"}
        )
        assert link.up and not errors
        for operation in ("cache_get", "cache_put", "rate_limit", "backoff", "generation"):
            labels = {"operation": operation}
            assert not metrics.registry.get_sample_value("gateway_redis_errors_total", labels)
        # And the user can touch nothing outside its prefix.
        outside = await link.run("probe", lambda r: r.set("other:key", b"x"), fallback="refused")
        assert outside == "refused"
        await flights.aclose()
        await other.aclose()
        await link.aclose()


# --- TLS (rediss://) ------------------------------------------------------------------------------


async def test_rediss_works_and_verifies_the_servers_certificate(tmp_path: Path):
    authority = trustme.CA()
    server_cert = authority.issue_cert("127.0.0.1")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(cert)
    server_cert.private_key_pem.write_to_path(key)
    authority.cert_pem.write_to_path(ca)
    port = free_port()
    arguments = ("--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert))
    arguments += ("--tls-key-file", str(key), "--tls-ca-cert-file", str(ca))
    arguments += ("--tls-auth-clients", "no")
    with redis_server(password="tls-password", arguments=arguments, port=port):
        url = f"rediss://:tls-password@127.0.0.1:{port}/0"
        trusting = RedisLink.from_url(
            f"{url}?ssl_ca_certs={ca}", timeout=1.0, metrics=GatewayMetrics()
        )
        cache = SharedCache(trusting, ttl=30, metrics=trusting.metrics)
        await cache.put("t:{i:1}:page:tls", b"over TLS")
        assert await cache.get("t:{i:1}:page:tls", kind="page") == b"over TLS"
        await trusting.aclose()
        # Without the authority, the certificate is refused: no value crosses.
        doubting = RedisLink.from_url(url, timeout=1.0, metrics=GatewayMetrics())
        answer = await doubting.run("ping", lambda r: r.ping(), fallback="refused")
        assert answer == "refused"
        await doubting.aclose()


# --- pages across processes (upstream/shared_pages.py) ----------------------------------------


async def test_a_page_landed_between_a_miss_and_the_lease_is_not_fetched_again(
    server: RedisServer,
):
    """B misses, A fetches and lands the page and frees its lease, then B claims the
    lease: B must read the landed page rather than call Kombo a second time."""
    server.flush()
    links = [
        RedisLink.from_url(server.url, timeout=1.0, metrics=GatewayMetrics()) for _ in range(2)
    ]
    a, b = (
        SharedPages(
            SharedCache(link, ttl=30, metrics=link.metrics),
            SharedFlights(link, KEYS),
            KEYS,
            Generations(link, KEYS),
        )
        for link in links
    )
    calls: list[str] = []
    page: JobsPage = {"next": None, "results": [{"id": "job-1"}], "byte_size": 20}
    params = {"page_size": "1"}

    def fetch(name: str) -> Callable[[], Awaitable[JobsPage]]:
        async def fetched() -> JobsPage:
            calls.append(name)
            return page

        return fetched

    missed_once = False
    real_get = b.cache.get

    async def get_then_let_a_land(key: str, *, kind: str) -> bytes | None:
        nonlocal missed_once
        value = await real_get(key, kind=kind)
        if not missed_once:
            missed_once = True
            await a.page(
                "i:1", "fp", params, fetch("A"), refresh=False, deadline=time.monotonic() + 5
            )
        return value

    b.cache.get = get_then_let_a_land  # type: ignore[method-assign]
    got = await b.page(
        "i:1", "fp", params, fetch("B"), refresh=False, deadline=time.monotonic() + 5
    )
    assert got["results"] == page["results"]
    assert calls == ["A"]
    # One lookup each, counted once: the re-read under the lease is no second miss.
    for link in links:
        assert metric(link, "gateway_shared_cache_lookups_total", kind="page", result="miss") == 1
    for pages, link in zip((a, b), links, strict=True):
        await pages.flights.aclose()
        await pages.generations.aclose()
        await link.aclose()


@pytest.mark.parametrize(
    "stored",
    [b"not json", b'{"data": {"results": "no list", "next": null}}', b"\x00" * 64],
    ids=["garbage", "not-a-page", "binary"],
)
async def test_whatever_redis_holds_under_a_page_key_is_checked_like_kombos_answer(
    link: RedisLink, stored: bytes
):
    """Redis is shared with whoever else can write to it: a value under a page key that
    is not a page is a miss (fetched again), never served; a job under another job's
    key is not that job."""
    pages = SharedPages(
        SharedCache(link, ttl=30, metrics=link.metrics),
        SharedFlights(link, KEYS),
        KEYS,
        Generations(link, KEYS),
    )
    params = {"page_size": "1"}
    generation = await pages.generations.shared("i:1")
    assert generation is not None
    await link.client.set(pages.page_key("i:1", generation, "fp", params), stored)
    await link.client.set(KEYS.job("i:1", generation, "fp", "job-1"), b'{"id": "job-2"}')
    real: JobsPage = {"next": None, "results": [{"id": "job-3"}], "byte_size": 20}
    calls: list[int] = []

    async def fetch() -> JobsPage:
        calls.append(1)
        return real

    got = await pages.page("i:1", "fp", params, fetch, refresh=False, deadline=time.monotonic() + 5)
    assert got["results"] == real["results"] and calls == [1]
    assert await pages.jobs("i:1", "fp", ["job-1"]) == {}
    await pages.flights.aclose()
    await pages.generations.aclose()
