"""Two gateway processes sharing one real Redis, over real HTTP (issue: several workers
and replicas as one gateway). Kombo is the session's sandbox, whose request log counts
the calls both gateways make.

Each test uses queries of its own (a `first` no other test uses), since each process's
own cache (level 1) outlives a test; Redis is emptied before each test.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from tests.redis_server import RedisServer, redis_server
from tests.support import (
    GatewayProcess,
    GraphQLClient,
    Upstream,
    error_codes,
    gateway_process,
    serve,
)

INTEGRATION_A, INTEGRATION_B = SANDBOX_INTEGRATION_IDS


def page_query(first: int) -> str:
    return f"{{ jobs(first: {first}) {{ edges {{ node {{ id komboId name }} }} }} }}"


NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Job { id name } } }"


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def replica_env(sandbox_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "KOMBO_API_KEY": SANDBOX_API_KEY,
        "KOMBO_BASE_URL": f"{sandbox_url}/v1",
        "KOMBO_INTEGRATION_ID": INTEGRATION_A,
        "GATEWAY_CACHE_TTL": "60",
        "GATEWAY_RATE_LIMIT": "0",
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": "test",
        **extra,
    }


@pytest.fixture(scope="module")
def replicas(
    sandbox_url: str, shared_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    env = replica_env(sandbox_url, shared_redis.url, GATEWAY_REQUEST_TIMEOUT="4")
    with (
        gateway_process(tmp_path_factory.mktemp("a"), env=env) as a,
        gateway_process(tmp_path_factory.mktemp("b"), env=env) as b,
    ):
        yield a, b


@pytest.fixture
def pair(
    replicas: tuple[GatewayProcess, GatewayProcess], shared_redis: RedisServer
) -> tuple[GraphQLClient, GraphQLClient]:
    shared_redis.fresh()
    a, b = replicas
    return GraphQLClient(a.url), GraphQLClient(b.url)


def errors_logged(replica: GatewayProcess) -> list[str]:
    """The error lines of a replica's log (JSON lines at level ERROR)."""
    return [line for line in replica.log().splitlines() if '"level": "ERROR"' in line]


def jobs_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in result, result
    return [edge["node"] for edge in result["data"]["jobs"]["edges"]]


def test_a_page_fetched_by_one_replica_answers_the_other_and_its_look_ups(
    pair: tuple[GraphQLClient, GraphQLClient], upstream: Upstream
):
    a, b = pair
    through_a = jobs_of(a.execute(page_query(7)))
    assert upstream.count() == 1
    assert jobs_of(b.execute(page_query(7))) == through_a
    ids = [job["id"] for job in through_a]
    nodes = b.data(NODES, {"ids": ids})["nodes"]
    assert [node["name"] for node in nodes] == [job["name"] for job in through_a]
    assert upstream.count() == 1  # B answered the page and every look-up from Redis


def test_concurrent_identical_queries_across_replicas_make_one_kombo_call(
    pair: tuple[GraphQLClient, GraphQLClient], upstream: Upstream, faults: Any
):
    faults({"status": 200, "latency_ms": 600, "times": 10})
    a, b = pair
    clients = [a, b] * 5
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda client: client.execute(page_query(8)), clients))
    names = {tuple(job["name"] for job in jobs_of(result)) for result in results}
    assert len(names) == 1
    assert upstream.count() == 1


def test_kombos_429_seen_by_one_replica_holds_the_others_calls(
    pair: tuple[GraphQLClient, GraphQLClient], upstream: Upstream, faults: Any
):
    faults(
        {
            "status": 429,
            "kombo_code": "PLATFORM.RATE_LIMIT_EXCEEDED",
            "headers": {"Retry-After": "8"},
            "integration": INTEGRATION_B,
        }
    )
    a, b = pair
    on_b = {"X-Integration-Id": INTEGRATION_B}
    first = a.execute(page_query(9), headers=on_b)
    assert error_codes(first) == ["RATE_LIMITED"]
    assert upstream.count() == 1
    held = b.execute(page_query(10), headers=on_b)
    assert error_codes(held) == ["RATE_LIMITED"]
    assert held["errors"][0]["extensions"]["retryAfter"] >= 6
    assert upstream.count() == 1  # B sent nothing: it held its calls
    # Another integration is not held.
    assert jobs_of(b.execute(page_query(10)))
    assert upstream.count() == 2


def test_no_redis_key_holds_the_api_key_and_integrations_never_share(
    pair: tuple[GraphQLClient, GraphQLClient], upstream: Upstream, shared_redis: RedisServer
):
    a, b = pair
    on_b = {"X-Integration-Id": INTEGRATION_B}
    jobs_of(a.execute(page_query(11)))
    jobs_of(b.execute(page_query(11), headers=on_b))  # same query, other integration
    assert upstream.count() == 2
    keys = [key.decode() for key in redis.Redis.from_url(shared_redis.url).keys("*")]
    assert keys and all(key.startswith("test:") for key in keys)
    assert not [key for key in keys if SANDBOX_API_KEY in key]
    assert {key.split("}")[0] for key in keys if "{" in key} == {
        f"test:{{{INTEGRATION_A}",
        f"test:{{{INTEGRATION_B}",
    }


def test_redis_dying_mid_load_loses_no_request_and_sharing_resumes(
    pair: tuple[GraphQLClient, GraphQLClient],
    replicas: tuple[GatewayProcess, GatewayProcess],
    upstream: Upstream,
    shared_redis: RedisServer,
):
    a, b = pair
    clients = [a, b] * 40

    def ask(n: int) -> dict[str, Any]:
        if n == 20:
            shared_redis.stop()
        return clients[n].execute(page_query(20 + n % 15))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(ask, range(len(clients))))
    failed = [result for result in results if "errors" in result]
    # Data, never an error; on failure, what the gateways logged says why.
    assert not failed, (failed[:2], *(errors_logged(replica) for replica in replicas))
    for client in (a, b):  # Redis is an optimisation, not a dependency
        assert httpx.get(f"{client.url}/readyz").status_code == 200
    shared_redis.start()
    time.sleep(5.5)  # the breaker's cooldown: then each process tries Redis again
    for client in (a, b):  # the trial calls close the breakers
        jobs_of(client.execute(page_query(40)))
    before = upstream.count()
    jobs_of(a.execute(page_query(41)))
    jobs_of(b.execute(page_query(41)))
    assert upstream.count() == before + 1  # shared again
    metrics = httpx.get(f"{b.url}/metrics").text
    assert "gateway_redis_up 1.0" in metrics
    # B answered from Redis: the whole answer (response cache) or the page.
    assert re.search(
        r'gateway_shared_cache_lookups_total\{kind="(response|page)",result="hit"\}', metrics
    )
    for replica in replicas:  # one line when Redis went away, one when it came back
        log = replica.log()
        assert log.count("Redis is unavailable") == 1, log[-3000:]
        assert log.count("Redis answers again") == 1


def test_the_rate_limit_holds_across_replicas(
    sandbox_url: str, shared_redis: RedisServer, tmp_path: Path
):
    shared_redis.fresh()
    env = replica_env(
        sandbox_url,
        shared_redis.url,
        GATEWAY_RATE_LIMIT="0.2",
        GATEWAY_RATE_BURST="3",
        GATEWAY_REDIS_PREFIX="limits",
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        gateway_process(tmp_path / "a", env=env) as a,
        gateway_process(tmp_path / "b", env=env) as b,
    ):
        statuses = [
            httpx.post(f"{url}/graphql", json={"query": "{ __typename }"}).status_code
            for url in (a.url, b.url, a.url, b.url)
        ]
    assert statuses == [200, 200, 200, 429]


def _any_key_kombo(calls: list[str]) -> Starlette:
    """A Kombo stand-in that accepts every key and names its one job after the key's
    digest, so an answer served to the wrong credential shows."""

    async def jobs(request: Request) -> JSONResponse:
        key = request.headers["authorization"].removeprefix("Bearer ")
        calls.append(key)
        owner = hashlib.sha256(key.encode()).hexdigest()[:8]
        job = {"id": "job-1", "name": f"owned by {owner}", "remote_id": "r1"}
        return JSONResponse({"status": "success", "data": {"results": [job], "next": None}})

    return Starlette(routes=[Route("/v1/ats/jobs", jobs)])


def test_two_credentials_never_share_an_entry(shared_redis: RedisServer, tmp_path: Path):
    shared_redis.fresh()
    calls: list[str] = []
    with serve(_any_key_kombo(calls)) as kombo_url:
        env = {
            "KOMBO_BASE_URL": f"{kombo_url}/v1",
            "GATEWAY_KOMBO_KEY_PASSTHROUGH": "true",
            "GATEWAY_CACHE_TTL": "60",
            "GATEWAY_RATE_LIMIT": "0",
            "GATEWAY_REDIS_URL": shared_redis.url,
        }
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with (
            gateway_process(tmp_path / "a", env=env) as a,
            gateway_process(tmp_path / "b", env=env) as b,
        ):
            query = "{ jobs(first: 1) { edges { node { name } } } }"
            names = []
            for url, key in (
                (a.url, "ks_first_key"),
                (b.url, "ks_second_key"),
                (b.url, "ks_first_key"),
            ):
                headers = {"X-Kombo-Api-Key": key, "X-Integration-Id": INTEGRATION_A}
                body = httpx.post(f"{url}/graphql", json={"query": query}, headers=headers).json()
                names.append(body["data"]["jobs"]["edges"][0]["node"]["name"])
    first, second, first_again = names
    assert first != second and first_again == first
    # The second key had its own call; the first key's second request, through the other
    # replica, was answered from Redis.
    assert calls == ["ks_first_key", "ks_second_key"]
    keys = [key.decode() for key in redis.Redis.from_url(shared_redis.url).keys("*")]
    assert not [key for key in keys if "ks_first_key" in key or "ks_second_key" in key]
