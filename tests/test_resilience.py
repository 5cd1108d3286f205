"""Kombo faults over real HTTP: retried when Kombo says it is safe, bounded by the deadline."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import httpx
import pytest

from gateway.config import Settings
from gateway.http.app import create_app
from tests.support import GraphQLClient, Upstream, error_codes, serve

QUERY = "{ jobs(first: 3) { nodes { komboId } } }"


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            {
                "status": 429,
                "kombo_code": "PLATFORM.RATE_LIMIT_EXCEEDED",
                "headers": {"Retry-After": "0"},
            },
            id="429",
        ),
        pytest.param({"status": 429, "kombo_code": "REMOTE.RATE_LIMIT_EXCEEDED"}, id="remote-429"),
        pytest.param({"status": 503, "kombo_code": "REMOTE.SERVICE_UNAVAILABLE"}, id="503"),
        pytest.param({"status": 503, "body": "<html>busy</html>"}, id="load-balancer-503"),
        pytest.param({"drop_connection": True}, id="dropped-connection"),
        pytest.param({"status": 200, "latency_ms": 1500}, id="timeout"),
    ],
)
def test_a_transient_fault_then_success_returns_data(
    gateway_settings: Settings, upstream: Upstream, faults: Any, fault: dict[str, Any]
):
    faults(fault)
    # A read timeout below the fault's latency, and a deadline that leaves room to retry.
    settings = dataclasses.replace(gateway_settings, read_timeout=0.5, request_timeout=10.0)
    with serve(create_app(settings)) as url:
        result = GraphQLClient(url).execute(QUERY)
    assert "errors" not in result, result
    assert len(result["data"]["jobs"]["nodes"]) == 3
    deadline = time.monotonic() + 5  # a timed-out call is logged when the sandbox answers it
    while upstream.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.count() == 2


def test_a_pooled_connection_kombo_closed_is_retried(
    gql: GraphQLClient, upstream: Upstream, faults: Any
):
    gql.data(QUERY)  # opens a keep-alive connection to the sandbox
    faults({"drop_connection": True})
    assert len(gql.data(QUERY)["jobs"]["nodes"]) == 3
    assert [call["status"] for call in upstream.requests()] == [200, 0, 200]


def test_persistent_rate_limit_is_rate_limited_within_the_deadline(
    gql: GraphQLClient, upstream: Upstream, faults: Any
):
    faults(
        {
            "status": 429,
            "kombo_code": "PLATFORM.RATE_LIMIT_EXCEEDED",
            "headers": {"Retry-After": "1"},
            "times": 100,
        }
    )
    started = time.monotonic()
    result = gql.execute(QUERY)
    elapsed = time.monotonic() - started
    assert error_codes(result) == ["RATE_LIMITED"]
    assert result["errors"][0]["extensions"]["retryAfter"] == 1
    assert elapsed < 3.0 + 1.0  # the test gateway's 3 s deadline, plus slack
    assert 2 <= upstream.count() <= 4
    # Kombo asked for a second of quiet: the gateway now holds this integration's calls
    # until then, which the next test must not pay for.
    time.sleep(1.0)


def test_persistent_5xx_is_upstream_unavailable_within_the_deadline(
    gql: GraphQLClient, upstream: Upstream, faults: Any
):
    faults({"status": 503, "kombo_code": "REMOTE.SERVICE_UNAVAILABLE", "times": 100})
    started = time.monotonic()
    result = gql.execute(QUERY)
    assert error_codes(result) == ["UPSTREAM_UNAVAILABLE"]
    assert time.monotonic() - started < 3.0 + 1.0
    assert upstream.count() == 4  # GATEWAY_RETRY_ATTEMPTS' default


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        pytest.param(
            {"status": 401, "kombo_code": "PLATFORM.AUTHENTICATION_INVALID"},
            "UNAUTHENTICATED",
            id="401",
        ),
        pytest.param(
            {"status": 400, "kombo_code": "PLATFORM.INPUT_INVALID"}, "UPSTREAM_ERROR", id="400"
        ),
        pytest.param(
            {"status": 409, "kombo_code": "INTEGRATION.SETUP_SYNC_PENDING"},
            "UPSTREAM_ERROR",
            id="409",
        ),
        pytest.param(
            {"status": 503, "kombo_code": "INTEGRATION.SETUP_SYNC_PENDING"},
            "UPSTREAM_ERROR",
            id="legacy-503-setup",
        ),
    ],
)
def test_auth_input_and_setup_errors_are_never_retried(
    gql: GraphQLClient, upstream: Upstream, faults: Any, fault: dict[str, Any], code: str
):
    faults({**fault, "times": 100})
    assert error_codes(gql.execute(QUERY)) == [code]
    assert upstream.count() == 1


def test_concurrent_calls_per_integration_are_capped(
    gateway_settings: Settings, upstream: Upstream, faults: Any
):
    faults({"status": 200, "latency_ms": 300, "times": 100})
    settings = dataclasses.replace(gateway_settings, max_concurrency=2, request_timeout=10.0)

    async def burst(url: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"{url}/graphql",
                        json={
                            "query": "query($n: String) { jobs(first: 2, "
                            "filter: {nameContains: $n}) { nodes { id } } }",
                            "variables": {"n": f"e{index}"},
                        },
                    )
                    for index in range(8)
                )
            )
        return [response.json() for response in responses]

    with serve(create_app(settings)) as url:
        started = time.monotonic()
        results = asyncio.run(burst(url))
        elapsed = time.monotonic() - started
    assert all("errors" not in result for result in results)
    assert upstream.count() == 8
    # Eight 300 ms calls, two at a time, take at least four rounds; uncapped, about one.
    assert elapsed >= 4 * 0.3 * 0.9
