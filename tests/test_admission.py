"""Abuse limits over real HTTP: refused early, coded, never a 500, never an upstream call."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from gateway.config import Settings, TokenSpec
from gateway.http.access import hash_token
from gateway.http.app import create_app
from tests.support import GraphQLClient, Upstream, error_codes, serve


@pytest.fixture(scope="module")
def limited(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    settings = dataclasses.replace(
        gateway_settings,
        max_body_bytes=64 * 1024,
        max_depth=8,
        max_aliases=400,
        max_tokens=5_000,
        max_ids=300,
    )
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


def test_an_oversized_body_is_refused_with_413(limited: GraphQLClient, upstream: Upstream):
    query = "{ jobs { nodes { id } } }" + " " * 70_000
    response = httpx.post(f"{limited.url}/graphql", json={"query": query})
    assert response.status_code == 413
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_an_oversized_chunked_body_is_refused_too(limited: GraphQLClient):
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "{ jobs { nodes { id } } }", "pad": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = httpx.post(
        f"{limited.url}/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_too_deep_a_query_fails_validation(limited: GraphQLClient, upstream: Upstream):
    deep = (
        "{ jobs { edges { node { screeningQuestions { preconditionQuestion { preconditionQuestion"
        " { preconditionQuestion { preconditionQuestion { preconditionQuestion { title } } } } } }"
        " } } } }"
    )
    assert error_codes(limited.execute(deep)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert upstream.count() == 0


def test_three_hundred_aliases_pass_and_too_many_fail(limited: GraphQLClient):
    ok = "{ " + " ".join(f"a{i}: __typename" for i in range(300)) + " }"
    assert len(limited.data(ok)) == 300
    too_many = "{ " + " ".join(f"a{i}: __typename" for i in range(401)) + " }"
    assert error_codes(limited.execute(too_many)) == ["GRAPHQL_VALIDATION_FAILED"]


def test_too_many_tokens_fail_to_parse(limited: GraphQLClient):
    huge = "{ " + " ".join("__typename" for _ in range(5_100)) + " }"  # under the body limit
    assert error_codes(limited.execute(huge)) == ["GRAPHQL_PARSE_FAILED"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", "ids", id="nodes"),
        pytest.param(
            "query($ids: [ID!]) { jobs(filter: {ids: $ids}) { nodes { id } } }", "ids", id="filter"
        ),
    ],
)
def test_too_many_ids_are_bad_user_input(
    limited: GraphQLClient, upstream: Upstream, query: str, variables: str
):
    ids = [f"{i:024d}" for i in range(301)]
    result = limited.execute(query, {variables: ids})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "300" in result["errors"][0]["message"]
    assert upstream.count() == 0


def test_a_thousand_ids_pass_by_default(gql: GraphQLClient, upstream: Upstream):
    known = gql.data("{ a: jobs(first: 250) { nodes { komboId } pageInfo { endCursor } } }")["a"]
    ids = [job["komboId"] for job in known["nodes"]]
    after = known["pageInfo"]["endCursor"]
    while len(ids) < 1000:
        page = gql.data(
            "query($a: String) { jobs(first: 250, after: $a) { nodes { komboId } "
            "pageInfo { endCursor } } }",
            {"a": after},
        )["jobs"]
        ids += [job["komboId"] for job in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
    upstream.reset()
    result = gql.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids[:1000]})
    assert None not in result["nodes"]
    assert upstream.count() == 4  # 250 IDs a call


def test_a_request_full_of_made_up_ids_costs_bounded_calls(gql: GraphQLClient, upstream: Upstream):
    made_up = [f"{i:024d}" for i in range(500)]
    result = gql.execute("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": made_up})
    assert result["data"]["nodes"][0] is None
    assert set(error_codes(result)) == {"BAD_USER_INPUT"}
    messages = {error["message"] for error in result["errors"]}
    # Each batch of 250 may spend 100 calls isolating unknown IDs; the request as a whole,
    # 100 (GATEWAY_MAX_UPSTREAM_CALLS): IDs left unchecked say which limit stopped them.
    assert all("GATEWAY_MAX_" in message for message in messages)
    assert upstream.count() <= 100


def test_a_caller_over_its_rate_is_rate_limited_and_others_are_not(
    gateway_settings: Settings, upstream: Upstream
):
    tokens = (
        TokenSpec("greedy", hash_token("greedy-token-123456"), None, None),
        TokenSpec("calm", hash_token("calm-token-12345678"), None, None),
    )
    settings = dataclasses.replace(gateway_settings, tokens=tokens, rate_limit=0.5, rate_burst=3)
    query = "{ __typename }"
    with serve(create_app(settings)) as url:
        client = GraphQLClient(url)
        greedy = {"Authorization": "Bearer greedy-token-123456"}
        answers = [client.post(query, headers=greedy) for _ in range(4)]
        calm = client.post(query, headers={"Authorization": "Bearer calm-token-12345678"})
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert error_codes(refused.json()) == ["RATE_LIMITED"]
    assert refused.json()["errors"][0]["extensions"]["retryAfter"] == 2
    assert refused.headers["Retry-After"] == "2"
    assert calm.status_code == 200


def test_introspection_and_graphiql_can_be_switched_off(gateway_settings: Settings):
    settings = dataclasses.replace(gateway_settings, introspection=False, graphiql=False)
    with serve(create_app(settings)) as url:
        client = GraphQLClient(url)
        codes = error_codes(client.execute("{ __schema { types { name } } }"))
        assert codes and set(codes) == {"GRAPHQL_VALIDATION_FAILED"}
        # Federation routers still read the subgraph SDL.
        assert "@key" in client.data("{ _service { sdl } }")["_service"]["sdl"]
        page = httpx.get(f"{url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert error_codes(page.json()) == ["BAD_USER_INPUT"]


def test_a_batch_of_operations_shares_one_requests_batching(gql: GraphQLClient, upstream: Upstream):
    ids = [
        job["komboId"]
        for job in gql.data("{ jobs(first: 3) { nodes { komboId } } }")["jobs"]["nodes"]
    ]
    upstream.reset()
    lookup = "query($id: ID!) { job(id: $id) { komboId } }"
    response = httpx.post(
        f"{gql.url}/graphql", json=[{"query": lookup, "variables": {"id": i}} for i in ids]
    )
    assert response.status_code == 200
    assert [r["data"]["job"]["komboId"] for r in response.json()] == ids
    assert upstream.count() == 1  # the three look-ups went out together


def test_batching_can_be_switched_off(gateway_settings: Settings):
    settings = dataclasses.replace(gateway_settings, max_batch=1)
    with serve(create_app(settings)) as url:
        response = httpx.post(f"{url}/graphql", json=[{"query": "{ __typename }"}] * 2)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
