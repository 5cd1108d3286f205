"""What one small hostile request may cost: each limit of the contract's section 7, over
real HTTP against the sandbox, with the number of Kombo calls it caused.

Each test names the probe finding it guards against; each fails without its fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from gateway.config import SANDBOX_API_KEY, Settings
from gateway.http.app import create_app
from gateway.http.http_protocol import HeaderTimeoutProtocol
from gateway.sandbox.data import dataset
from gateway.schema.pagination import Position, cursor_binding, cursor_key, encode_cursor
from tests.conftest import INTEGRATION_A, INTEGRATION_B
from tests.support import (
    GraphQLClient,
    Upstream,
    error_codes,
    fanning_fragments,
    fragment_chain,
    serve,
)


@contextlib.contextmanager
def gateway(settings: Settings, **options: Any) -> Iterator[GraphQLClient]:
    with serve(create_app(settings), **options) as url:
        yield GraphQLClient(url)


def unknown_ids(count: int, start: int = 0) -> list[str]:
    return [f"{i:024d}" for i in range(start, start + count)]


# --- 1. fields after fragment expansion ------------------------------------------------------


def test_exponential_fragments_are_refused_at_once(gql: GraphQLClient, upstream: Upstream):
    document = fanning_fragments(21)
    assert len(document) < 1_000

    started = time.monotonic()
    result = gql.execute(document)
    elapsed = time.monotonic() - started

    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "GATEWAY_MAX_FIELDS" in result["errors"][0]["message"]
    # Validating the expansion took 15.8 s before; counting without expanding, milliseconds.
    assert elapsed < 2.0
    assert upstream.count() == 0


@pytest.mark.parametrize("length", [240, 1_000])
def test_deep_fragment_chains_are_refused_with_the_limit_named(
    gql: GraphQLClient, upstream: Upstream, length: int
):
    """A linear chain of 240 fragments raised RecursionError (INTERNAL_SERVER_ERROR)."""
    result = gql.execute(fragment_chain(length))

    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "deep" in result["errors"][0]["message"]
    assert upstream.count() == 0


def test_the_field_limit_counts_every_expansion(gateway_settings: Settings):
    """Aliases and each expansion of a fragment count; below the limit it runs."""
    settings = dataclasses.replace(gateway_settings, max_fields=60)
    fragment = "fragment J on Job { id name status }"  # 12 x (jobs, nodes, 3 spread) = 60
    spreads = " ".join(f"a{i}: jobs(first: 1) {{ nodes {{ ...J }} }}" for i in range(12))
    with gateway(settings) as client:
        assert "errors" not in client.execute(f"{{ {spreads} }} {fragment}")
        result = client.execute(f"{{ {spreads} one_more: __typename }} {fragment}")
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]


def test_graphiql_introspection_passes_the_default_limits(gql: GraphQLClient):
    query = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True
    )
    assert "errors" not in gql.execute(query)


# --- 2. one budget of Kombo calls per HTTP request ---------------------------------------------


def test_a_batch_of_unknown_ids_spends_one_request_budget(
    gateway_settings: Settings, upstream: Upstream
):
    """10 x nodes(1000 unknown IDs) made 4,000 Kombo calls."""
    settings = dataclasses.replace(gateway_settings, max_upstream_calls=25)
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    batch = [{"query": query, "variables": {"ids": unknown_ids(300, 300 * i)}} for i in range(4)]
    with gateway(settings) as client:
        response = httpx.post(f"{client.url}/graphql", json=batch, timeout=30)

    assert response.status_code == 200
    assert upstream.count() <= 25
    results = response.json()
    codes = {code for result in results for code in error_codes(result)}
    assert codes == {"BAD_USER_INPUT"}
    messages = {e["message"] for r in results for e in r.get("errors", [])}
    assert any("GATEWAY_MAX_UPSTREAM_CALLS" in message for message in messages)


def test_aliases_walking_long_page_chains_stop_at_the_budget(
    gateway_settings: Settings, upstream: Upstream
):
    """10 aliases x jobs(first: 250) after a cursor of page size 1 made 2,500 calls. What
    resolved before the budget ran out stays: here a batch's other operation."""
    settings = dataclasses.replace(gateway_settings, max_upstream_calls=30)
    with gateway(settings) as client:
        first = client.data("{ jobs(first: 1) { pageInfo { endCursor } } }")
        cursor = first["jobs"]["pageInfo"]["endCursor"]
        upstream.reset()
        walks = " ".join(
            f'a{i}: jobs(first: 250, after: "{cursor}") {{ nodes {{ id }} }}' for i in range(10)
        )
        # One call, which the walks' first calls leave room for.
        batch = [{"query": "{ jobs(first: 5) { nodes { id } } }"}, {"query": f"{{ {walks} }}"}]
        response = httpx.post(f"{client.url}/graphql", json=batch, timeout=30)

    assert upstream.count() <= 30
    cheap, walking = response.json()
    assert len(cheap["data"]["jobs"]["nodes"]) == 5 and "errors" not in cheap
    assert set(error_codes(walking)) == {"BAD_USER_INPUT"}
    assert all("GATEWAY_MAX_UPSTREAM_CALLS" in e["message"] for e in walking["errors"])


def test_a_request_within_its_budget_is_unaffected(gateway_settings: Settings):
    known = [record.id for record in dataset()[INTEGRATION_A].jobs[:60]]
    settings = dataclasses.replace(gateway_settings, max_upstream_calls=2)
    with gateway(settings) as client:
        data = client.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": known})
    assert len(data["nodes"]) == 60 and all(data["nodes"])


ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Job { id } } }"


def test_entities_take_at_most_max_ids_representations_duplicates_counted(
    gateway_settings: Settings, upstream: Upstream
):
    """`_entities` accepted 1,200 representations, and 16,360 duplicates of one ID gave an
    18 MB answer: the ID cap holds for it too, counted before duplicates are removed."""
    known = dataset()[INTEGRATION_A].jobs[0].id
    settings = dataclasses.replace(gateway_settings, max_ids=1_000)
    representations = [{"__typename": "Job", "komboId": known}] * 1_001
    with gateway(settings) as client:
        refused = client.post(ENTITIES, {"r": representations}).json()
        assert upstream.count() == 0
        served = client.data(ENTITIES, {"r": representations[:1_000]})

    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "GATEWAY_MAX_IDS" in refused["errors"][0]["message"]
    assert len(served["_entities"]) == 1_000 and upstream.count() == 1


def test_entities_of_unknown_ids_spend_the_request_budget(
    gateway_settings: Settings, upstream: Upstream
):
    """10,000 unknown IDs through `_entities` in one request made 4,000 Kombo calls."""
    settings = dataclasses.replace(gateway_settings, max_upstream_calls=20)
    representations = [{"__typename": "Job", "komboId": i} for i in unknown_ids(1_000)]
    batch = [{"query": ENTITIES, "variables": {"r": representations}}] * 3
    with gateway(settings) as client:
        response = httpx.post(f"{client.url}/graphql", json=batch, timeout=30)

    assert response.status_code == 200
    assert upstream.count() <= 20
    messages = {e["message"] for r in response.json() for e in r.get("errors", [])}
    assert any("GATEWAY_MAX_UPSTREAM_CALLS" in message for message in messages)


# --- rate limit: batches, pass-through keys, client addresses ---------------------------------


def test_each_operation_of_a_batch_counts_against_the_rate_limit(gateway_settings: Settings):
    settings = dataclasses.replace(gateway_settings, rate_limit=0.001, rate_burst=5)
    batch = [{"query": "{ __typename }"}] * 3
    with gateway(settings) as client:
        first = httpx.post(f"{client.url}/graphql", json=batch)
        second = httpx.post(f"{client.url}/graphql", json=batch)

    assert first.status_code == 200
    assert second.status_code == 429  # 3 + 3 operations > a burst of 5
    assert error_codes(second.json()) == ["RATE_LIMITED"]


@pytest.fixture
def passthrough(gateway_settings: Settings) -> Settings:
    return dataclasses.replace(
        gateway_settings, key_passthrough=True, rate_limit=0.001, rate_burst=5
    )


def jobs_with_key(client: GraphQLClient, key: str, **headers: str) -> httpx.Response:
    return client.post(
        "{ jobs(first: 1) { nodes { id } } }", headers={"X-Kombo-Api-Key": key, **headers}
    )


def test_rotating_made_up_kombo_keys_does_not_escape_the_rate_limit(
    passthrough: Settings, upstream: Upstream
):
    """With a limit of 5, 40 requests with 40 made-up keys all reached Kombo."""
    with gateway(passthrough) as client:
        statuses = [jobs_with_key(client, f"ks_made_up_{i:04d}").status_code for i in range(40)]

    assert statuses.count(429) >= 34
    assert upstream.count() <= 6


def test_forwarded_for_counts_only_from_a_trusted_proxy(passthrough: Settings):
    """Rotating `X-Forwarded-For` is worthless unless the peer is a trusted proxy; behind
    one, each forwarded client has a budget of its own."""
    with gateway(passthrough) as client:
        spoofed = [
            jobs_with_key(client, SANDBOX_API_KEY, **{"X-Forwarded-For": f"203.0.113.{i}"})
            for i in range(10)
        ]
    assert [r.status_code for r in spoofed].count(429) >= 4

    behind_proxy = dataclasses.replace(
        passthrough,
        trusted_proxies=Settings.from_env({"GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}).trusted_proxies,
    )
    with gateway(behind_proxy) as client:
        forwarded = [
            jobs_with_key(client, SANDBOX_API_KEY, **{"X-Forwarded-For": f"203.0.113.{i}"})
            for i in range(10)
        ]
    # Same key for all: its own bucket (5) still holds, addresses each have their own.
    assert [r.status_code for r in forwarded].count(200) == 5


# --- 6. filters too long for a URL ----------------------------------------------------------


@pytest.mark.parametrize("length", [9_000, 65_000])
def test_a_filter_too_long_for_a_url_is_refused_before_any_call(
    gql: GraphQLClient, upstream: Upstream, length: int
):
    """`nameContains` of ~65,000 characters was an INTERNAL_SERVER_ERROR (httpx InvalidURL)."""
    result = gql.execute(
        "query($n: String) { jobs(filter: {nameContains: $n}) { nodes { id } } }",
        {"n": "x" * length},
    )

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "too long" in result["errors"][0]["message"]
    assert upstream.count() == 0


# --- 4. the key never leaves through what Kombo sends back -----------------------------------


def test_the_key_is_redacted_from_every_field_kombo_sends_back(
    gql: GraphQLClient, faults: Any, upstream: Upstream, caplog: pytest.LogCaptureFixture
):
    key = SANDBOX_API_KEY
    faults(
        {
            "status": 400,
            "body": {
                "status": "error",
                "error": {
                    "code": f"PLATFORM.INPUT_INVALID.{key}",
                    "title": f"Bad key {key}",
                    "message": f"The key {key} was sent",
                    "log_url": f"https://app.kombo.dev/logs?key={key}",
                },
            },
        }
    )
    with caplog.at_level(logging.DEBUG):
        response = gql.post("{ jobs(first: 1) { nodes { id } } }")

    assert key not in response.text
    kombo = response.json()["errors"][0]["extensions"]["kombo"]
    assert "[redacted]" in kombo["code"] and "[redacted]" in kombo["logUrl"]
    assert all(key not in record.getMessage() for record in caplog.records)
    assert all(key not in str(record.__dict__) for record in caplog.records)


# --- 8 and 9. clients that leave, and clients that are slow -----------------------------------


def raw_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_that_leaves_mid_body_is_counted_as_499(gateway_url: str):
    name = 'gateway_graphql_requests_total{status="499"}'
    before = metric(gateway_url, name)
    errors_before = metric(gateway_url, 'gateway_graphql_requests_total{status="500"}')
    with raw_connection(gateway_url) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"query":'
        )
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while metric(gateway_url, name) == before and time.monotonic() < deadline:
        time.sleep(0.05)

    assert metric(gateway_url, name) == before + 1
    assert metric(gateway_url, 'gateway_graphql_requests_total{status="500"}') == errors_before


def test_a_body_that_does_not_arrive_in_time_gets_408(gateway_settings: Settings):
    settings = dataclasses.replace(gateway_settings, body_timeout=0.5)
    with gateway(settings) as client, raw_connection(client.url) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"query":'
        )
        answer = sock.recv(4096)

    assert answer.startswith(b"HTTP/1.1 408")
    assert b"BAD_USER_INPUT" in answer and b"GATEWAY_BODY_TIMEOUT" in answer


def test_connections_that_never_finish_their_headers_are_closed(
    gateway_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """200 connections that never finished their headers were held forever."""
    monkeypatch.setattr(HeaderTimeoutProtocol, "timeout", 0.5)
    with gateway(gateway_settings, http=HeaderTimeoutProtocol) as client:
        sockets = [raw_connection(client.url) for _ in range(50)]
        for index, sock in enumerate(sockets):
            if index % 2:
                sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        time.sleep(1.0)
        closed = 0
        for sock in sockets:
            sock.settimeout(3)
            with contextlib.suppress(OSError):
                if sock.recv(1) == b"":
                    closed += 1
            sock.close()
        # A well-behaved client on the same server is still served.
        assert client.data("{ __typename }") == {"__typename": "Query"}

    assert closed == 50


# --- 10. cursors cannot be re-bound ---------------------------------------------------------


def test_a_cursor_rewritten_for_another_integration_is_refused_before_any_call(
    gql: GraphQLClient, upstream: Upstream
):
    """The checksum was an unkeyed digest: a client could rebind a cursor to another
    integration. Forged here with the format but not the gateway's key."""
    guessed = cursor_key("")
    forged = encode_cursor(cursor_binding(INTEGRATION_B, {}, key=guessed), Position(None, 10, 3))
    result = gql.execute(
        "query($after: String) { jobs(first: 2, after: $after) { nodes { id } } }",
        {"after": forged},
        headers={"X-Integration-Id": INTEGRATION_B},
    )

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0
