"""`JobFilter` over real HTTP: each field reaches Kombo as its documented query parameter."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.schema.ids import global_id
from tests.conftest import INTEGRATION_B
from tests.support import GraphQLClient, Upstream, error_codes

QUERY = """
query Filtered($filter: JobFilter) {
  jobs(first: 250, filter: $filter) {
    nodes {
      komboId remoteId jobCode postUrl name status statusRaw employmentType visibility
      remoteCreatedAt changedAt remoteDeletedAt
    }
  }
}
"""


def jobs(
    gql: GraphQLClient, job_filter: dict[str, Any], integration: str | None = None
) -> list[dict[str, Any]]:
    headers = {"X-Integration-Id": integration} if integration else None
    data = gql.data(QUERY, {"filter": job_filter}, headers=headers)
    nodes: list[dict[str, Any]] = data["jobs"]["nodes"]
    return nodes


@pytest.fixture(scope="module")
def sample(gateway_url: str) -> list[dict[str, Any]]:
    return jobs(GraphQLClient(gateway_url), {"includeDeleted": True})


@pytest.mark.parametrize(
    ("job_filter", "params"),
    [
        pytest.param({"remoteIds": ["118", "7"]}, {"remote_ids": "118,7"}, id="remoteIds"),
        pytest.param({"jobCodes": ["A-1", "B-2"]}, {"job_codes": "A-1,B-2"}, id="jobCodes"),
        pytest.param(
            {"postUrl": "https://x.test/j/1"}, {"post_url": "https://x.test/j/1"}, id="postUrl"
        ),
        pytest.param({"status": "OPEN"}, {"status": "OPEN"}, id="status-deprecated"),
        pytest.param({"statuses": ["OPEN", "DRAFT"]}, {"statuses": "OPEN,DRAFT"}, id="statuses"),
        pytest.param(
            {"employmentTypes": ["FULL_TIME", "INTERNSHIP"]},
            {"employment_types": "FULL_TIME,INTERNSHIP"},
            id="employmentTypes",
        ),
        pytest.param(
            {"visibilities": ["PUBLIC", "CONFIDENTIAL"]},
            {"visibilities": "PUBLIC,CONFIDENTIAL"},
            id="visibilities",
        ),
        pytest.param(
            {"remoteCreatedAfter": "2025-03-01T10:00:00+02:00"},
            {"remote_created_after": "2025-03-01T08:00:00.000Z"},
            id="remoteCreatedAfter-offset-to-utc",
        ),
        pytest.param(
            {"updatedAfter": "2026-01-02T03:04:05.678901Z"},
            {"updated_after": "2026-01-02T03:04:05.678Z"},
            id="updatedAfter-milliseconds",
        ),
        pytest.param(
            {"updatedAfter": "2026-01-02T03:04:05"},
            {"updated_after": "2026-01-02T03:04:05.000Z"},
            id="updatedAfter-naive-is-utc",
        ),
        pytest.param(
            {"nameContains": "Engineer"}, {"name_contains": "Engineer"}, id="nameContains"
        ),
        pytest.param({"includeDeleted": True}, {"include_deleted": "true"}, id="includeDeleted"),
        pytest.param(
            {"includeDeleted": False}, {"include_deleted": "false"}, id="includeDeleted-f"
        ),
        pytest.param(
            {"ignoreUnsupportedFilters": True},
            {"ignore_unsupported_filters": "true"},
            id="ignoreUnsupportedFilters",
        ),
        pytest.param({"statuses": []}, {}, id="empty-enum-list-means-any"),
        pytest.param({"statuses": None, "nameContains": None}, {}, id="explicit-nulls"),
        pytest.param(
            {"statuses": ["OPEN"], "visibilities": ["PUBLIC"]},
            {"statuses": "OPEN", "visibilities": "PUBLIC"},
            id="several-filters",
        ),
    ],
)
def test_each_filter_is_sent_as_its_kombo_parameter(
    gql: GraphQLClient, upstream: Upstream, job_filter: dict[str, Any], params: dict[str, str]
):
    gql.data(QUERY, {"filter": job_filter})
    (call,) = upstream.requests()
    assert call["path"] == "/v1/ats/jobs"
    assert call["params"] == {**params, "page_size": "250"}


def test_ids_accept_kombo_and_global_ids_and_send_kombo_ids(
    gql: GraphQLClient, upstream: Upstream, sample: list[dict[str, Any]]
):
    first, second = sample[0]["komboId"], sample[1]["komboId"]
    found = jobs(gql, {"ids": [first, global_id("Job", second), first]})
    assert {job["komboId"] for job in found} == {first, second}
    assert upstream.requests()[-1]["params"]["ids"] == f"{first},{second}"


def test_filters_and_across_fields_and_or_within_a_list(
    gql: GraphQLClient, sample: list[dict[str, Any]]
):
    open_or_draft = jobs(gql, {"statuses": ["OPEN", "DRAFT"]})
    assert open_or_draft and {job["status"] for job in open_or_draft} == {"OPEN", "DRAFT"}
    both = jobs(gql, {"statuses": ["OPEN"], "visibilities": ["PUBLIC"]})
    assert both and all(j["status"] == "OPEN" and j["visibility"] == "PUBLIC" for j in both)
    # Without the second filter, other visibilities come back: the two filters ANDed.
    assert any(job["visibility"] != "PUBLIC" for job in jobs(gql, {"statuses": ["OPEN"]}))


def test_values_are_matched_by_kombo(gql: GraphQLClient, sample: list[dict[str, Any]]):
    target = next(job for job in sample if job["jobCode"] and job["postUrl"])
    assert [j["komboId"] for j in jobs(gql, {"jobCodes": [target["jobCode"]]})] == [
        target["komboId"]
    ]
    by_url = jobs(gql, {"postUrl": target["postUrl"], "includeDeleted": True})
    assert [j["komboId"] for j in by_url] == [target["komboId"]]
    by_remote = jobs(gql, {"remoteIds": [target["remoteId"]], "includeDeleted": True})
    assert target["komboId"] in [j["komboId"] for j in by_remote]
    named = jobs(gql, {"nameContains": "engineer"})
    assert named and all("engineer" in job["name"].lower() for job in named)


def test_deleted_jobs_only_with_include_deleted(gql: GraphQLClient, sample: list[dict[str, Any]]):
    assert any(job["remoteDeletedAt"] for job in sample)
    assert not any(job["remoteDeletedAt"] for job in jobs(gql, {}))


def test_time_filters_select_later_jobs(gql: GraphQLClient):
    created = jobs(gql, {"remoteCreatedAfter": "2026-01-01T00:00:00Z"})
    assert created and all(job["remoteCreatedAt"] >= "2026-01-01" for job in created)
    # Integration B's jobs fit in one page, so the counts compare whole lists.
    updated = jobs(gql, {"updatedAfter": "2026-03-01T00:00:00Z"}, INTEGRATION_B)
    assert updated and len(updated) < len(jobs(gql, {}, INTEGRATION_B))


@pytest.mark.parametrize(
    "job_filter",
    [
        pytest.param({"ids": []}, id="ids"),
        pytest.param({"remoteIds": []}, id="remoteIds"),
        pytest.param({"jobCodes": [], "statuses": ["OPEN"]}, id="jobCodes"),
    ],
)
def test_an_empty_id_list_matches_nothing_without_upstream_call(
    gql: GraphQLClient, upstream: Upstream, job_filter: dict[str, Any]
):
    assert jobs(gql, job_filter) == []
    assert upstream.count() == 0


@pytest.mark.parametrize(
    ("job_filter", "expected_code"),
    [
        pytest.param({"statuses": ["NOPE"]}, "BAD_USER_INPUT", id="unknown-enum"),
        pytest.param({"status": "open"}, "BAD_USER_INPUT", id="lowercase-enum"),
        pytest.param({"ids": ["tooShort"]}, "BAD_USER_INPUT", id="malformed-id"),
        pytest.param({"ids": ["A" * 23]}, "BAD_USER_INPUT", id="23-char-id"),
        pytest.param({"ids": [global_id("JobStage", "A" * 24)]}, "BAD_USER_INPUT", id="stage-id"),
        pytest.param({"remoteIds": ["a,b"]}, "BAD_USER_INPUT", id="comma-in-list-value"),
        pytest.param({"updatedAfter": "yesterday"}, "BAD_USER_INPUT", id="bad-datetime"),
        pytest.param({"includeDeleted": "yes"}, "BAD_USER_INPUT", id="bad-boolean"),
        pytest.param({"unknownField": 1}, "BAD_USER_INPUT", id="unknown-field"),
    ],
)
def test_bad_filter_values_are_coded_errors_without_upstream_call(
    gql: GraphQLClient, upstream: Upstream, job_filter: dict[str, Any], expected_code: str
):
    result = gql.execute(QUERY, {"filter": job_filter})
    assert error_codes(result) == [expected_code]
    assert upstream.count() == 0


def test_unknown_enum_literal_fails_validation(gql: GraphQLClient, upstream: Upstream):
    result = gql.execute("{ jobs(filter: {statuses: [NOPE]}) { nodes { id } } }")
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert upstream.count() == 0
