"""The upstream cache over real HTTP: repeats, priming, single-flight, isolation, no-cache."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.config import Settings
from gateway.http.app import create_app
from tests.conftest import INTEGRATION_A, INTEGRATION_B
from tests.support import GraphQLClient, Upstream, serve, wait_until

PAGE = "query($f: JobFilter) { jobs(first: 20, filter: $f) { nodes { id komboId name } } }"


@pytest.fixture
def cached(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    """A fresh gateway with a 30 s cache (the session gateway runs with the cache off),
    without the response cache, so that every request reaches the upstream cache
    (`tests/test_response_cache.py` has the response cache's tests)."""
    settings = dataclasses.replace(gateway_settings, cache_ttl=30, response_cache_bytes=0)
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


def test_the_same_query_twice_costs_one_call(cached: GraphQLClient, upstream: Upstream):
    first = cached.data(PAGE)
    assert upstream.count() == 1
    assert cached.data(PAGE) == first
    assert upstream.count() == 1


def test_jobs_from_a_page_answer_later_lookups_without_a_call(
    cached: GraphQLClient, upstream: Upstream
):
    nodes = cached.data(PAGE)["jobs"]["nodes"]
    upstream.reset()
    ids = [node["id"] for node in nodes[:10]] + [node["komboId"] for node in nodes[10:]]
    looked_up = cached.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Job { name } } }", {"ids": ids}
    )
    assert [node["id"] for node in looked_up["nodes"]] == [node["id"] for node in nodes]
    assert upstream.count() == 0


def test_twenty_concurrent_identical_requests_cost_one_call(
    cached: GraphQLClient, upstream: Upstream, faults: Any
):
    async def burst() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{cached.url}/graphql",
                        json={"query": PAGE, "variables": {"f": {"statuses": ["DRAFT"]}}},
                    )
                    for _ in range(20)
                )
            )
        return [response.json() for response in responses]

    # The sandbox answers slowly, so all twenty arrive while the first call is in flight.
    faults({"status": 200, "latency_ms": 300})
    results = asyncio.run(burst())
    assert all("errors" not in result for result in results)
    assert len({str(result["data"]) for result in results}) == 1
    assert upstream.count() == 1


def test_integrations_never_share_cached_data(cached: GraphQLClient, upstream: Upstream):
    a_jobs = cached.data(PAGE)["jobs"]["nodes"]
    b_jobs = cached.data(PAGE, headers={"X-Integration-Id": INTEGRATION_B})["jobs"]["nodes"]
    assert {job["komboId"] for job in a_jobs}.isdisjoint(job["komboId"] for job in b_jobs)
    # Integration A's job, primed in A's cache, is unknown to B: B asks Kombo and gets null.
    upstream.reset()
    lookup = "query($id: ID!) { job(id: $id) { id } }"
    assert cached.data(lookup, {"id": a_jobs[0]["id"]}, {"X-Integration-Id": INTEGRATION_B}) == {
        "job": None
    }
    assert [call["integration"] for call in upstream.requests()] == [INTEGRATION_B]
    assert cached.data(lookup, {"id": a_jobs[0]["id"]}, {"X-Integration-Id": INTEGRATION_A}) == {
        "job": {"id": a_jobs[0]["id"]}
    }
    assert upstream.count() == 1


def test_cache_control_no_cache_fetches_fresh_data_and_refreshes_the_cache(
    cached: GraphQLClient, upstream: Upstream
):
    cached.data(PAGE)
    nodes = cached.data(PAGE, headers={"Cache-Control": "no-cache"})["jobs"]["nodes"]
    assert upstream.count() == 2
    lookup = "query($id: ID!) { job(id: $id) { id } }"
    cached.data(lookup, {"id": nodes[0]["id"]}, {"Cache-Control": "no-cache"})
    assert upstream.count() == 3
    cached.data(PAGE)
    cached.data(lookup, {"id": nodes[0]["id"]})
    assert upstream.count() == 3


def test_errors_are_not_cached(cached: GraphQLClient, upstream: Upstream, faults: Any):
    faults({"status": 500, "kombo_code": "PLATFORM.UNKNOWN_ERROR"})
    failed = cached.execute(PAGE)
    assert failed["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert len(cached.data(PAGE)["jobs"]["nodes"]) == 20
    assert upstream.count() == 2


def test_entities_with_200_mixed_key_representations_cost_one_call(
    cached: GraphQLClient, upstream: Upstream
):
    nodes = cached.data(
        "{ jobs(first: 200, filter: {statuses: [CLOSED, ARCHIVED, OPEN]})"
        " { nodes { id komboId } } }",
        headers={"Cache-Control": "no-cache"},
    )["jobs"]["nodes"]
    assert len(nodes) == 200
    representations = [
        {"__typename": "Job", "id": node["id"]}
        if index % 2
        else {"__typename": "Job", "komboId": node["komboId"]}
        for index, node in enumerate(nodes)
    ]
    upstream.reset()
    result = cached.data(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Job { id komboId } } }",
        {"r": representations},
        headers={"Cache-Control": "no-cache"},
    )
    assert result["_entities"] == nodes
    assert upstream.count() == 1


def test_metrics_report_upstream_calls_cache_and_batching(
    cached: GraphQLClient, upstream: Upstream
):
    nodes = cached.data(PAGE)["jobs"]["nodes"]
    cached.data(PAGE)
    ids = [node["id"] for node in nodes] + [nodes[0]["id"]]
    cached.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    fresh = [base64.b64encode(f"Job:{'1' * 23}{c}".encode()).decode() for c in "AB"]
    cached.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": fresh})
    text = httpx.get(f"{cached.url}/metrics").text

    def value(sample: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(sample + " "))
        return float(line.rsplit(" ", 1)[1])

    assert value('kombo_upstream_requests_total{status="200"}') >= 1
    assert value('gateway_cache_lookups_total{kind="page",result="hit"}') == 1
    assert value('gateway_cache_lookups_total{kind="job",result="hit"}') == 20
    assert value("gateway_lookups_total") == 23
    assert value("gateway_lookups_coalesced_total") == 21
    assert value("gateway_lookup_batch_size_count") == 1
    assert value("gateway_lookup_batch_size_sum") == 2


# --- stale-while-revalidate -------------------------------------------------------------------


def test_a_stale_page_answers_at_once_and_is_refreshed_once_in_the_background(
    gateway_settings: Settings, upstream: Upstream, faults: Any
):
    settings = dataclasses.replace(gateway_settings, cache_ttl=2.0, cache_stale=30.0)
    query = "{ jobs(first: 3) { nodes { id name } } }"
    with serve(create_app(settings)) as url:
        gql = GraphQLClient(url)
        first = gql.data(query)
        assert upstream.count() == 1
        time.sleep(2.2)  # past the TTL, well within the stale window
        faults({"status": 200, "latency_ms": 1000})  # the refresh will take 1 s
        started = time.monotonic()
        assert gql.data(query) == first
        assert gql.data(query) == first  # while the refresh runs: stale again, no 2nd call
        assert time.monotonic() - started < 0.8  # neither waited for Kombo
        wait_until(lambda: upstream.count() == 2, 10, "the background refresh")
        time.sleep(1.3)  # the refresh lands (1 s), and is then fresh for 2 s
        assert gql.data(query) == first  # a plain hit on the refreshed page
        assert upstream.count() == 2


def test_with_no_stale_window_a_caller_past_the_ttl_waits_for_kombo(
    gateway_settings: Settings, upstream: Upstream, faults: Any
):
    settings = dataclasses.replace(gateway_settings, cache_ttl=1.0, cache_stale=0.0)
    query = "{ jobs(first: 4) { nodes { id } } }"
    with serve(create_app(settings)) as url:
        gql = GraphQLClient(url)
        gql.data(query)
        time.sleep(1.2)
        faults({"status": 200, "latency_ms": 1000})
        started = time.monotonic()
        gql.data(query)
        assert time.monotonic() - started >= 1.0
        assert upstream.count() == 2
