"""The `jobs` connection over real HTTP: cursors, page spanning, upstream cost, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.conftest import INTEGRATION_A, INTEGRATION_B
from tests.support import GraphQLClient, Upstream, error_codes

PAGE = """
query Page($first: Int, $after: String, $filter: JobFilter) {
  jobs(first: $first, after: $after, filter: $filter) {
    edges { cursor node { komboId } }
    nodes { komboId }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def page(gql: GraphQLClient, **variables: Any) -> dict[str, Any]:
    connection: dict[str, Any] = gql.data(PAGE, variables)["jobs"]
    return connection


def ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["komboId"] for edge in connection["edges"]]


def walk(gql: GraphQLClient, first: int, **variables: Any) -> tuple[list[str], int]:
    """Every job ID of a list, walking with `first`; also the number of GraphQL pages."""
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        connection = page(gql, first=first, after=after, **variables)
        pages += 1
        seen += ids(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, pages
        after = connection["pageInfo"]["endCursor"]


@pytest.fixture(scope="module")
def all_ids_a(gateway_url: str) -> list[str]:
    """The reference order of integration A's listed jobs, read with the largest pages."""
    seen, _ = walk(GraphQLClient(gateway_url), 250)
    return seen


def test_default_page_has_fifty_edges_with_own_cursors(gql: GraphQLClient, upstream: Upstream):
    connection = page(gql)
    assert len(connection["edges"]) == 50
    assert ids(connection) == [node["komboId"] for node in connection["nodes"]]
    cursors = [edge["cursor"] for edge in connection["edges"]]
    assert len(set(cursors)) == 50
    info = connection["pageInfo"]
    assert info == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": cursors[0],
        "endCursor": cursors[-1],
    }
    assert upstream.count() == 1


def test_after_a_mid_page_edge_returns_exactly_the_following_edges(
    gql: GraphQLClient, all_ids_a: list[str]
):
    first_page = page(gql, first=10)
    middle_cursor = first_page["edges"][3]["cursor"]
    following = page(gql, first=4, after=middle_cursor)
    assert ids(following) == all_ids_a[4:8]
    assert following["pageInfo"]["hasPreviousPage"] is True
    assert following["pageInfo"]["hasNextPage"] is True


def test_every_edge_cursor_resumes_right_after_its_edge(gql: GraphQLClient, all_ids_a: list[str]):
    first_page = page(gql, first=6)
    for index, edge in enumerate(first_page["edges"]):
        assert ids(page(gql, first=3, after=edge["cursor"])) == all_ids_a[index + 1 : index + 4]


def test_first_larger_than_the_rest_of_the_upstream_page_spans_pages(
    gql: GraphQLClient, upstream: Upstream, all_ids_a: list[str]
):
    first_page = page(gql, first=10)
    upstream.reset()
    spanning = page(gql, first=25, after=first_page["edges"][5]["cursor"])
    assert ids(spanning) == all_ids_a[6:31]
    # The chain keeps Kombo's page size of 10: the rest of page 1, pages 2 and 3, then 4.
    calls = upstream.requests()
    assert len(calls) == 4
    assert {call["params"]["page_size"] for call in calls} == {"10"}
    assert "cursor" not in calls[0]["params"]
    assert all("cursor" in call["params"] for call in calls[1:])


def test_end_cursor_at_a_page_boundary_resumes_from_kombos_next_cursor(
    gql: GraphQLClient, upstream: Upstream, all_ids_a: list[str]
):
    first_page = page(gql, first=20)
    upstream.reset()
    second = page(gql, first=20, after=first_page["pageInfo"]["endCursor"])
    assert ids(second) == all_ids_a[20:40]
    calls = upstream.requests()
    assert len(calls) == 1
    assert "cursor" in calls[0]["params"]


@pytest.mark.parametrize("first", [7, 100, 250])
def test_walking_the_list_costs_one_upstream_call_per_page(
    gql: GraphQLClient, upstream: Upstream, all_ids_a: list[str], first: int
):
    assert len(all_ids_a) >= 1000
    seen, pages = walk(gql, first)
    assert seen == all_ids_a
    assert len(set(seen)) == len(seen)
    assert upstream.count() == pages
    assert pages <= math.ceil(len(all_ids_a) / first) + 1


def test_walking_1000_jobs_costs_ceil_1000_over_first_calls(gql: GraphQLClient, upstream: Upstream):
    first = 40
    collected: list[str] = []
    after = None
    while len(collected) < 1000:
        connection = page(gql, first=first, after=after)
        collected += ids(connection)
        after = connection["pageInfo"]["endCursor"]
    assert len(collected) == 1000
    assert upstream.count() == math.ceil(1000 / first)


def test_last_page_has_no_next_page(gql: GraphQLClient, all_ids_a: list[str]):
    near_end = page(gql, first=250)
    after = near_end["pageInfo"]["endCursor"]
    while True:
        connection = page(gql, first=250, after=after)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert ids(connection)[-1] == all_ids_a[-1]
    after_last = page(gql, first=5, after=connection["pageInfo"]["endCursor"])
    assert after_last["edges"] == []
    assert after_last["pageInfo"]["hasNextPage"] is False
    assert after_last["pageInfo"]["endCursor"] is None


def test_first_zero_returns_no_edges_but_says_whether_more_exist(gql: GraphQLClient):
    nonempty = page(gql, first=0)
    assert nonempty["edges"] == [] and nonempty["nodes"] == []
    assert nonempty["pageInfo"]["hasNextPage"] is True
    empty = page(gql, first=0, filter={"nameContains": "no job is called like this"})
    assert empty["pageInfo"]["hasNextPage"] is False


def test_a_filtered_walk_stays_within_the_filter(gql: GraphQLClient):
    seen, _ = walk(gql, 30, filter={"statuses": ["OPEN"]})
    statuses = gql.data(
        "query($ids: [ID!]) { jobs(first: 250, filter: {ids: $ids}) { nodes { status } } }",
        {"ids": seen[:250]},
    )["jobs"]["nodes"]
    assert seen and {job["status"] for job in statuses} == {"OPEN"}


@pytest.mark.parametrize(
    "first",
    [pytest.param(251, id="above-max"), pytest.param(-1, id="negative")],
)
def test_first_out_of_range_is_bad_user_input_without_upstream_call(
    gql: GraphQLClient, upstream: Upstream, first: int
):
    result = gql.execute(PAGE, {"first": first})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "first" in result["errors"][0]["message"]
    assert upstream.count() == 0


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param("MTo1OjE6", id="truncated"),
        pytest.param("x" * 5000, id="huge"),
    ],
)
def test_malformed_cursor_is_bad_user_input_without_upstream_call(
    gql: GraphQLClient, upstream: Upstream, cursor: str
):
    result = gql.execute(PAGE, {"first": 5, "after": cursor})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_cursor_is_bound_to_its_filter(gql: GraphQLClient, upstream: Upstream):
    cursor = page(gql, first=5, filter={"statuses": ["OPEN"]})["pageInfo"]["endCursor"]
    upstream.reset()
    for other in ({}, {"statuses": ["CLOSED"]}, {"statuses": ["OPEN"], "includeDeleted": True}):
        result = gql.execute(PAGE, {"first": 5, "after": cursor, "filter": other})
        assert error_codes(result) == ["BAD_USER_INPUT"], other
        assert "filter" in result["errors"][0]["message"]
    assert upstream.count() == 0
    # The same filter, however spelled, accepts it.
    same = {"statuses": ["OPEN", "OPEN"]}
    assert len(page(gql, first=5, after=cursor, filter=same)["edges"]) == 5


def test_cursor_is_bound_to_its_integration(gql: GraphQLClient, upstream: Upstream):
    cursor = page(gql, first=5)["pageInfo"]["endCursor"]
    upstream.reset()
    result = gql.execute(
        PAGE, {"first": 5, "after": cursor}, headers={"X-Integration-Id": INTEGRATION_B}
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_integration_header_selects_the_integration(gql: GraphQLClient, upstream: Upstream):
    connection = gql.data(PAGE, {"first": 5}, headers={"X-Integration-Id": INTEGRATION_B})
    assert len(connection["jobs"]["edges"]) == 5
    assert [call["integration"] for call in upstream.requests()] == [INTEGRATION_B]
    default = gql.data(PAGE, {"first": 5})
    assert ids(default["jobs"]) != ids(connection["jobs"])
    assert upstream.requests()[-1]["integration"] == INTEGRATION_A
