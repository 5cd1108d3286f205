"""`job`, `node` and `nodes` over real HTTP: ID forms, nulls, batching into few upstream calls."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.schema.ids import global_id
from tests.conftest import INTEGRATION_B
from tests.support import GraphQLClient, Upstream, error_codes

# Well-formed Kombo IDs that no sandbox job has.
UNKNOWN_IDS = ["1111111111111111111111Zz", "2222222222222222222222Zz"]


@pytest.fixture(scope="module")
def known(gateway_url: str) -> list[dict[str, Any]]:
    """The first 300 jobs of integration A (deleted ones included), with their global IDs."""
    query = """query($after: String) { jobs(first: 250, after: $after,
        filter: {includeDeleted: true}) { nodes { id komboId remoteDeletedAt }
        pageInfo { endCursor } } }"""
    gql = GraphQLClient(gateway_url)
    first = gql.data(query)["jobs"]
    second = gql.data(query, {"after": first["pageInfo"]["endCursor"]})["jobs"]
    return (first["nodes"] + second["nodes"])[:300]


def test_job_by_kombo_id_and_by_global_id(gql: GraphQLClient, known: list[dict[str, Any]]):
    job = known[0]
    data = gql.data(
        "query($a: ID!, $b: ID!) { a: job(id: $a) { id komboId } b: job(id: $b) { id komboId } }",
        {"a": job["komboId"], "b": job["id"]},
    )
    assert data["a"] == data["b"] == {"id": job["id"], "komboId": job["komboId"]}


def test_lookups_include_deleted_jobs(gql: GraphQLClient, upstream: Upstream, known: list[Any]):
    deleted = next(job for job in known if job["remoteDeletedAt"])
    data = gql.data("query($id: ID!) { job(id: $id) { remoteDeletedAt } }", {"id": deleted["id"]})
    assert data["job"]["remoteDeletedAt"] == deleted["remoteDeletedAt"]
    assert upstream.requests()[0]["params"]["include_deleted"] == "true"


def test_node_and_nodes_resolve_jobs(gql: GraphQLClient, known: list[dict[str, Any]]):
    a, b = known[0], known[1]
    data = gql.data(
        """query($id: ID!, $ids: [ID!]!) {
            node(id: $id) { __typename id ... on Job { komboId } }
            nodes(ids: $ids) { __typename id }
        }""",
        {"id": a["id"], "ids": [b["id"], a["komboId"], UNKNOWN_IDS[0]]},
    )
    assert data["node"] == {"__typename": "Job", "id": a["id"], "komboId": a["komboId"]}
    assert data["nodes"] == [
        {"__typename": "Job", "id": b["id"]},
        {"__typename": "Job", "id": a["id"]},
        None,
    ]


def test_unknown_id_is_null_without_error(gql: GraphQLClient, known: list[dict[str, Any]]):
    result = gql.execute(
        "query($a: ID!, $b: ID!) { a: job(id: $a) { komboId } b: job(id: $b) { komboId } }",
        {"a": UNKNOWN_IDS[0], "b": known[0]["komboId"]},
    )
    assert "errors" not in result
    assert result["data"] == {"a": None, "b": {"komboId": known[0]["komboId"]}}


def test_sixty_aliases_cost_one_upstream_call(
    gql: GraphQLClient, upstream: Upstream, known: list[dict[str, Any]]
):
    chosen = known[:60]
    query = (
        "{ "
        + " ".join(f'j{i}: job(id: "{job["id"]}") {{ komboId }}' for i, job in enumerate(chosen))
        + " }"
    )
    data = gql.data(query)
    assert [data[f"j{i}"]["komboId"] for i in range(60)] == [job["komboId"] for job in chosen]
    calls = upstream.requests()
    assert len(calls) == 1
    assert calls[0]["params"]["ids"].split(",") == [job["komboId"] for job in chosen]


def test_three_hundred_ids_cost_two_calls_and_duplicates_collapse(
    gql: GraphQLClient, upstream: Upstream, known: list[dict[str, Any]]
):
    ids = [job["id"] for job in known] + [job["komboId"] for job in known[:20]]
    data = gql.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert [node["id"] for node in data["nodes"]] == [job["id"] for job in known + known[:20]]
    calls = upstream.requests()
    assert len(calls) == 2
    sent = [kombo_id for call in calls for kombo_id in call["params"]["ids"].split(",")]
    assert sorted(sent) == sorted(job["komboId"] for job in known)
    assert max(len(call["params"]["ids"].split(",")) for call in calls) <= 250


def test_two_unknown_ids_among_fifty_are_isolated_in_few_calls(
    gql: GraphQLClient, upstream: Upstream, known: list[dict[str, Any]]
):
    ids = [job["komboId"] for job in known[:48]]
    ids.insert(7, UNKNOWN_IDS[0])
    ids.insert(31, UNKNOWN_IDS[1])
    result = gql.execute(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Job { komboId } } }", {"ids": ids}
    )
    assert "errors" not in result
    resolved = [node and node["komboId"] for node in result["data"]["nodes"]]
    assert resolved == [None if i in UNKNOWN_IDS else i for i in ids]
    assert upstream.count() <= 15


def test_lookups_use_the_requested_integration(
    gql: GraphQLClient, upstream: Upstream, known: list[dict[str, Any]]
):
    # A job of integration A does not exist in integration B.
    data = gql.data(
        "query($id: ID!) { job(id: $id) { id } }",
        {"id": known[0]["id"]},
        headers={"X-Integration-Id": INTEGRATION_B},
    )
    assert data == {"job": None}
    assert {call["integration"] for call in upstream.requests()} == {INTEGRATION_B}


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("A" * 23, id="23-chars"),
        pytest.param("A" * 25, id="25-chars"),
        pytest.param("not an id at all", id="garbage"),
        pytest.param(global_id("JobStage", "A" * 24), id="stage-global-id"),
        pytest.param(global_id("Job", "short"), id="job-global-id-malformed"),
    ],
)
def test_malformed_ids_are_bad_user_input_without_upstream_call(
    gql: GraphQLClient, upstream: Upstream, bad_id: str, known: list[dict[str, Any]]
):
    for query, variables in [
        ("query($id: ID!) { job(id: $id) { id } }", {"id": bad_id}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": bad_id}),
        ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [known[0]["id"], bad_id]}),
    ]:
        result = gql.execute(query, variables)
        assert error_codes(result) == ["BAD_USER_INPUT"], query
    assert upstream.count() == 0


def test_a_failing_lookup_does_not_fail_its_siblings(gql: GraphQLClient, known: list[Any]):
    result = gql.execute(
        'query($id: ID!) { bad: job(id: "nope") { id } good: job(id: $id) { komboId } }',
        {"id": known[0]["id"]},
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["path"] == ["bad"]
    assert result["data"] == {"bad": None, "good": {"komboId": known[0]["komboId"]}}
