"""Bad data from Kombo is Kombo's fault, field by field (api-contract.md §7), over real HTTP.

A small hostile "Kombo" answers `GET /v1/ats/jobs` with crafted JSON, and a real gateway
serves it: a wrongly typed value is null with an `UPSTREAM_ERROR` at its own path, a
list keeps what it can serve and reports the rest, a page that is not a page fails
`jobs` with `UPSTREAM_ERROR`, and no ID is ever invented. Never INTERNAL_SERVER_ERROR,
and one bad record never takes its page (or its job) with it.

Every test runs against both executors: the compiled fast path (`build_schema()`, what
the gateway serves) and the standard one (`build_schema(fast_path=False)`).
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import gateway.http.app
import gateway.schema.build
from bench.queries import JOB_ALL_FIELDS
from gateway.config import SANDBOX_INTEGRATION_IDS, Settings
from gateway.http.app import create_app
from gateway.sandbox.data import dataset
from gateway.schema.fastpath.projection import GatewayExecutionContext
from tests.support import GraphQLClient, LiveServer, serve

INTEGRATION = SANDBOX_INTEGRATION_IDS[0]
SOURCE_JOBS: list[dict[str, Any]] = [
    orjson.loads(record.encoded) for record in dataset()[INTEGRATION].jobs[:40]
]
#: The longest error message any of this may produce: no value is echoed.
MAX_MESSAGE = 200


class HostileKombo:
    """`GET /v1/ats/jobs`: `jobs` as one page (only those named by `ids`, when given), or
    `body` as is when set. Anything else: 404."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.body: Any = None
        self.base_url = ""
        self.app = Starlette(routes=[Route("/v1/ats/jobs", self.answer)])

    async def answer(self, request: Request) -> Response:
        if self.body is not None:
            return Response(orjson.dumps(self.body), media_type="application/json")
        jobs = self.jobs
        ids = request.query_params.get("ids")
        if ids is not None:
            wanted = set(ids.split(","))
            jobs = [job for job in jobs if isinstance(job, dict) and job.get("id") in wanted]
        body = {"status": "success", "data": {"next": None, "results": jobs}}
        return Response(orjson.dumps(body), media_type="application/json")


@pytest.fixture(scope="module")
def kombo() -> Iterator[HostileKombo]:
    hostile = HostileKombo()
    with LiveServer(hostile.app) as server:
        hostile.base_url = server.base_url
        yield hostile


@pytest.fixture(scope="module", params=["fast", "standard"])
def client(request: pytest.FixtureRequest, kombo: HostileKombo) -> Iterator[GraphQLClient]:
    settings = Settings(
        api_key="hostile-test-key",
        base_url=kombo.base_url,
        integration_id=INTEGRATION,
        cache_ttl=0,
        rate_limit=0,
        retry_attempts=1,
    )
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "standard":
            standard = functools.partial(gateway.schema.build.build_schema, fast_path=False)
            assert standard().execution_context_class is GatewayExecutionContext
            patch.setattr(gateway.http.app, "build_schema", standard)
        app = create_app(settings)
    with serve(app) as url:
        yield GraphQLClient(url)


@pytest.fixture
def jobs(kombo: HostileKombo) -> Iterator[list[dict[str, Any]]]:
    """Three sandbox jobs that this "Kombo" serves; a test damages them in place."""
    kombo.body = None
    kombo.jobs = copy.deepcopy(SOURCE_JOBS[:3])
    yield kombo.jobs
    kombo.body = None


def run(client: GraphQLClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    result = client.execute(query, variables)
    for error in result.get("errors", []):
        assert error["extensions"]["code"] == "UPSTREAM_ERROR", error
        assert len(error["message"]) <= MAX_MESSAGE, error
    return result


def errors_at(result: dict[str, Any]) -> list[list[Any]]:
    return [error["path"] for error in result.get("errors", [])]


def served_clean(client: GraphQLClient, kombo: HostileKombo, query: str) -> Any:
    """What the gateway answers for the same jobs before they were damaged."""
    damaged = kombo.jobs
    kombo.jobs = copy.deepcopy(SOURCE_JOBS[: len(damaged)])
    try:
        return client.data(query)
    finally:
        kombo.jobs = damaged


NODES = "{ jobs(first: 10) { nodes { %s } } }"


# --------------------------------------------------------------------------------------------
# A wrongly typed leaf: null, one UPSTREAM_ERROR at its path, everything else as it was
# --------------------------------------------------------------------------------------------


def test_weekly_hours_forty_is_null_with_an_upstream_error(
    client: GraphQLClient, kombo: HostileKombo, jobs: list[dict[str, Any]]
):
    query = NODES % "komboId name weeklyHours salaryAmount status stages { komboId name }"
    clean = served_clean(client, kombo, query)
    jobs[1]["weekly_hours"] = "forty"
    result = run(client, query)
    assert errors_at(result) == [["jobs", "nodes", 1, "weeklyHours"]]
    assert "`weeklyHours`" in result["errors"][0]["message"]
    expected = copy.deepcopy(clean)
    expected["jobs"]["nodes"][1]["weeklyHours"] = None
    assert result["data"] == expected


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [
        ("weekly_hours", "weeklyHours", "40"),  # a number as text is still text
        ("weekly_hours", "weeklyHours", True),
        ("salary_amount", "salaryAmount", {"amount": 1}),
        ("name", "name", 42),
        ("name", "name", ["a"]),
        ("confidential", "confidential", 1),
        ("confidential", "confidential", "yes"),
        ("remote_id", "remoteId", False),
    ],
)
def test_a_wrongly_typed_scalar_is_null_with_an_upstream_error(
    client: GraphQLClient,
    kombo: HostileKombo,
    jobs: list[dict[str, Any]],
    key: str,
    field: str,
    value: Any,
):
    query = NODES % f"komboId {field} jobCode"
    clean = served_clean(client, kombo, query)
    jobs[0][key] = value
    result = run(client, query)
    assert errors_at(result) == [["jobs", "nodes", 0, field]]
    expected = copy.deepcopy(clean)
    expected["jobs"]["nodes"][0][field] = None
    assert result["data"] == expected


@pytest.mark.parametrize(
    "value",
    [1747562130, 0, True, {"at": "2026-05-18"}, ["2026-05-18T09:55:30.731Z"], "yesterday",
     "2026-13-45T00:00:00Z", "", "2026-05-18T09:55:30.731Z" * 100],
)  # fmt: skip
def test_a_datetime_that_is_not_an_iso_8601_string_is_null_with_an_upstream_error(
    client: GraphQLClient, kombo: HostileKombo, jobs: list[dict[str, Any]], value: Any
):
    query = NODES % "komboId openedAt changedAt remoteDeletedAt"
    clean = served_clean(client, kombo, query)
    jobs[2]["changed_at"] = value
    result = run(client, query)
    assert errors_at(result) == [["jobs", "nodes", 2, "changedAt"]]
    assert "`changedAt`" in result["errors"][0]["message"]
    expected = copy.deepcopy(clean)
    expected["jobs"]["nodes"][2]["changedAt"] = None
    assert result["data"] == expected


@pytest.mark.parametrize(
    "value", ["2026-05-18T09:55:30.731Z", "2026-05-18T09:55:30+02:00", "2026-05-18"]
)
def test_an_iso_8601_datetime_goes_out_exactly_as_sent(
    client: GraphQLClient, jobs: list[dict[str, Any]], value: str
):
    jobs[0]["opened_at"] = value
    result = run(client, NODES % "openedAt")
    assert "errors" not in result
    assert result["data"]["jobs"]["nodes"][0]["openedAt"] == value


def test_an_enum_that_is_no_string_is_null_with_an_upstream_error_unmapped_text_is_not(
    client: GraphQLClient, jobs: list[dict[str, Any]]
):
    jobs[0]["status"] = 3
    jobs[0]["employment_type"] = "Werkstudent"  # Kombo's pass-through: no error
    jobs[1]["job_postings"] = [{**jobs[1]["job_postings"][0], "status": {"x": 1}}]
    query = NODES % (
        "status statusRaw employmentType employmentTypeRaw jobPostings { komboId status statusRaw }"
    )
    result = run(client, query)
    assert errors_at(result) == [
        ["jobs", "nodes", 0, "status"],
        ["jobs", "nodes", 0, "statusRaw"],
        ["jobs", "nodes", 1, "jobPostings", 0, "status"],
        ["jobs", "nodes", 1, "jobPostings", 0, "statusRaw"],
    ]
    first, second = result["data"]["jobs"]["nodes"][:2]
    assert first["status"] is None and first["statusRaw"] is None
    assert first["employmentType"] is None and first["employmentTypeRaw"] == "Werkstudent"
    assert second["jobPostings"] == [
        {"komboId": jobs[1]["job_postings"][0]["id"], "status": None, "statusRaw": None}
    ]


def test_a_huge_wrong_value_is_not_echoed(client: GraphQLClient, jobs: list[dict[str, Any]]):
    jobs[0]["weekly_hours"] = "x" * 100_000
    jobs[0]["location"] = ["y" * 100_000]
    result = run(client, NODES % "weeklyHours location { city }")
    assert errors_at(result) == [
        ["jobs", "nodes", 0, "weeklyHours"],
        ["jobs", "nodes", 0, "location"],
    ]
    assert all("xxxx" not in e["message"] and "yyyy" not in e["message"] for e in result["errors"])


# --------------------------------------------------------------------------------------------
# Objects and lists: what cannot be served is left out, reported where it was
# --------------------------------------------------------------------------------------------


def test_stages_that_are_not_a_list_read_as_empty_with_an_upstream_error(
    client: GraphQLClient, kombo: HostileKombo, jobs: list[dict[str, Any]]
):
    query = NODES % "komboId name stages { komboId name } hiringTeam { komboId }"
    clean = served_clean(client, kombo, query)
    jobs[1]["stages"] = "x"
    jobs[2]["hiring_team"] = {"id": "not-a-list"}
    result = run(client, query)
    assert errors_at(result) == [
        ["jobs", "nodes", 1, "stages"],
        ["jobs", "nodes", 2, "hiringTeam"],
    ]
    expected = copy.deepcopy(clean)
    expected["jobs"]["nodes"][1]["stages"] = []
    expected["jobs"]["nodes"][2]["hiringTeam"] = []
    assert result["data"] == expected


def test_stages_without_a_string_id_are_left_out_with_an_upstream_error(
    client: GraphQLClient, kombo: HostileKombo, jobs: list[dict[str, Any]]
):
    query = NODES % "komboId stages { id komboId name index }"
    clean = served_clean(client, kombo, query)
    good = jobs[0]["stages"]
    assert len(good) >= 2
    jobs[0]["stages"] = [
        {"name": "no id"},
        good[0],
        {"id": None, "name": "null id"},
        {"id": {"a": 1}, "name": "object id"},
        "x",
        None,
        good[1],
        *good[2:],
    ]
    result = run(client, query)
    assert errors_at(result) == [["jobs", "nodes", 0, "stages"]]
    assert "5 items" in result["errors"][0]["message"]
    assert result["data"] == clean  # exactly the good stages, in order


def test_a_selection_without_ids_leaves_out_the_same_items(
    client: GraphQLClient, jobs: list[dict[str, Any]]
):
    """Objects without a string `id` are never served, whatever the query selects of them."""
    jobs[0]["stages"] = [{"name": "no id"}, *jobs[0]["stages"]]
    result = run(client, NODES % "stages { name }")
    assert errors_at(result) == [["jobs", "nodes", 0, "stages"]]
    assert {"name": "no id"} not in result["data"]["jobs"]["nodes"][0]["stages"]
    assert len(result["data"]["jobs"]["nodes"][0]["stages"]) == len(SOURCE_JOBS[0]["stages"])


def test_nested_lists_and_objects_fail_only_themselves(
    client: GraphQLClient, jobs: list[dict[str, Any]]
):
    job = jobs[0]
    job["location"] = "Berlin"
    job["screening_questions"] = [
        {"id": "q1", "title": "text", "format": "TEXT"},
        {"id": "q2", "title": "no type", "format": {"max_length": 3}},
        {
            "id": "q3",
            "title": "select",
            "format": {
                "type": "SINGLE_SELECT",
                "options": [{"id": "o1", "name": "A"}, {"name": "no id"}, 7],
            },
        },
        {"id": "q4", "title": "file", "format": {"type": "FILE", "accepted_mime_types": "pdf"}},
        {"id": "q5", "title": "options", "precondition_options": ["o1", True, 3, {"x": 1}]},
        ["not", "a", "question"],
    ]
    job["hiring_team"] = [{"id": "m1", "hiring_team_roles": "RECRUITER"}]
    query = NODES % (
        "komboId location { city } "
        "screeningQuestions { komboId title preconditionOptions format { __typename "
        "  ... on SingleSelectQuestionFormat { options { komboId name } } "
        "  ... on FileQuestionFormat { acceptedMimeTypes } } } "
        "hiringTeam { komboId hiringTeamRoles hiringTeamRolesRaw }"
    )
    result = run(client, query)
    at = ["jobs", "nodes", 0]
    expected_paths = [
        [*at, "location"],
        [*at, "screeningQuestions"],  # the list item that is no question
        [*at, "screeningQuestions", 0, "format"],
        [*at, "screeningQuestions", 1, "format"],
        [*at, "screeningQuestions", 2, "format", "options"],
        [*at, "screeningQuestions", 3, "format", "acceptedMimeTypes"],
        [*at, "screeningQuestions", 4, "preconditionOptions"],
        [*at, "hiringTeam", 0, "hiringTeamRoles"],
        [*at, "hiringTeam", 0, "hiringTeamRolesRaw"],
    ]
    assert sorted(errors_at(result), key=str) == sorted(expected_paths, key=str)
    node = result["data"]["jobs"]["nodes"][0]
    assert node["komboId"] == job["id"] and node["location"] is None
    assert node["screeningQuestions"] == [
        {"komboId": "q1", "title": "text", "preconditionOptions": None, "format": None},
        {"komboId": "q2", "title": "no type", "preconditionOptions": None, "format": None},
        {
            "komboId": "q3",
            "title": "select",
            "preconditionOptions": None,
            "format": {
                "__typename": "SingleSelectQuestionFormat",
                "options": [{"komboId": "o1", "name": "A"}],
            },
        },
        {
            "komboId": "q4",
            "title": "file",
            "preconditionOptions": None,
            "format": {"__typename": "FileQuestionFormat", "acceptedMimeTypes": None},
        },
        {
            "komboId": "q5",
            "title": "options",
            "preconditionOptions": ["o1", "true"],
            "format": None,
        },
    ]
    assert node["hiringTeam"] == [
        {"komboId": "m1", "hiringTeamRoles": [], "hiringTeamRolesRaw": []}
    ]
    others = result["data"]["jobs"]["nodes"][1:]
    assert [job["komboId"] for job in others] == [job["id"] for job in jobs[1:]]


# --------------------------------------------------------------------------------------------
# Pages and records that are not what Kombo documents: `jobs` fails, coded UPSTREAM_ERROR
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "data": {"next": None, "results": {"id": "x"}}},
        {"status": "success", "data": {"next": None, "results": "jobs"}},
        {"status": "success", "data": ["not", "an", "object"]},
        {"status": "success"},
        ["not", "an", "object"],
        {"status": "success", "data": {"next": 5, "results": []}},
        {"status": "success", "data": {"next": None, "results": [1, 2]}},
    ],
)
def test_a_page_that_is_not_a_page_fails_jobs_with_an_upstream_error(
    client: GraphQLClient, kombo: HostileKombo, jobs: list[dict[str, Any]], body: Any
):
    kombo.body = body
    result = run(client, NODES % "komboId")
    assert result["data"] is None or result["data"]["jobs"] is None
    assert errors_at(result) == [["jobs"]]


@pytest.mark.parametrize("kombo_id", ["missing", None, 5, {"a": 1}, ["x"]])
def test_a_job_without_a_string_id_is_never_served_with_an_invented_one(
    client: GraphQLClient, jobs: list[dict[str, Any]], kombo_id: Any
):
    if kombo_id == "missing":
        del jobs[1]["id"]
    else:
        jobs[1]["id"] = kombo_id
    result = run(client, NODES % "id komboId name")
    assert errors_at(result) == [["jobs"]]
    assert result["data"] is None or result["data"]["jobs"] is None
    assert b'"None"' not in orjson.dumps(result)


# --------------------------------------------------------------------------------------------
# The same through by-ID look-ups
# --------------------------------------------------------------------------------------------


def test_a_job_looked_up_by_id_has_its_bad_fields_reported_the_same_way(
    client: GraphQLClient, jobs: list[dict[str, Any]]
):
    jobs[0]["weekly_hours"] = "forty"
    jobs[0]["stages"] = "x"
    jobs[1]["changed_at"] = 17
    jobs[1]["hiring_team"] = [{"first_name": "no id"}, *jobs[1]["hiring_team"]]
    query = (
        "query($id: ID!, $ids: [ID!]!) {"
        "  job(id: $id) { komboId name weeklyHours stages { komboId } }"
        "  nodes(ids: $ids) { ... on Job { komboId changedAt hiringTeam { komboId } } }"
        "}"
    )
    ids = [jobs[0]["id"], jobs[1]["id"]]
    result = run(client, query, {"id": jobs[0]["id"], "ids": ids})
    # `job` and `nodes` complete in either order, each field's errors in field order.
    assert sorted(errors_at(result), key=str) == sorted(
        [["job", "weeklyHours"], ["job", "stages"], ["nodes", 1, "changedAt"],
         ["nodes", 1, "hiringTeam"]],
        key=str,
    )  # fmt: skip
    data = result["data"]
    assert data["job"] == {
        "komboId": jobs[0]["id"],
        "name": jobs[0]["name"],
        "weeklyHours": None,
        "stages": [],
    }
    assert data["nodes"][0]["komboId"] == jobs[0]["id"]
    assert data["nodes"][1]["changedAt"] is None
    assert [m["komboId"] for m in data["nodes"][1]["hiringTeam"]] == [
        m["id"] for m in SOURCE_JOBS[1]["hiring_team"]
    ]


def test_a_looked_up_job_without_a_string_id_is_an_upstream_error(
    client: GraphQLClient, kombo: HostileKombo, jobs: list[dict[str, Any]]
):
    wanted = jobs[0]["id"]
    kombo.body = {"status": "success", "data": {"next": None, "results": [{"id": None}]}}
    result = run(client, "query($id: ID!) { job(id: $id) { komboId } }", {"id": wanted})
    assert errors_at(result) == [["job"]]
    assert result["data"] == {"job": None}


# --------------------------------------------------------------------------------------------
# Whatever the damage, every job of the page is served and every error is Kombo's
# --------------------------------------------------------------------------------------------

WEIRD: list[Any] = [
    None, 0, -1, 2**40, 3.5, True, "", "x", "OPEN", "2026-05-18T09:55:30.731Z", [], {}, [1],
    {"id": 5}, "2026-13-01",
]  # fmt: skip


def damage(value: Any, rng: random.Random, top: bool = False) -> None:
    """Replace, delete or keep each key (recursively), and some list items; a job keeps its
    own `id` (a page with a job without one is refused whole, tested above)."""
    if isinstance(value, dict):
        for key in list(value):
            if top and key == "id":
                continue
            roll = rng.random()
            if roll < 0.05:
                del value[key]
            elif roll < 0.2:
                value[key] = rng.choice(WEIRD)
            else:
                damage(value[key], rng)
    elif isinstance(value, list):
        for index in range(len(value)):
            if rng.random() < 0.1:
                value[index] = rng.choice(WEIRD)
            else:
                damage(value[index], rng)


@pytest.mark.parametrize("seed", range(8))
def test_any_damage_costs_only_the_damaged_fields(
    client: GraphQLClient, kombo: HostileKombo, seed: int
):
    rng = random.Random(seed)
    kombo.body = None
    kombo.jobs = copy.deepcopy(SOURCE_JOBS[seed * 5 : seed * 5 + 5])
    for job in kombo.jobs:
        damage(job, rng, top=True)
    result = run(client, NODES % JOB_ALL_FIELDS)  # every error is UPSTREAM_ERROR
    assert result.get("errors"), "the damage should have been noticed"
    nodes = result["data"]["jobs"]["nodes"]
    assert [node["komboId"] for node in nodes] == [job["id"] for job in kombo.jobs]
