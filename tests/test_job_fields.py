"""Every `Job` field over real HTTP, checked against the Kombo record the sandbox sent.

The test reads each integration's jobs twice: straight from the sandbox's REST API
(Kombo's dicts) and through the gateway with every field selected, then checks each
GraphQL field against an independent statement of the contract's mapping.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from bench.queries import JOB_ALL_FIELDS
from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from tests.support import GraphQLClient

# Every field of Job, nested objects and union members: the benchmark's selection.
ALL_FIELDS = (
    "query All($after: String) {"
    "  jobs(first: 250, after: $after, filter: {includeDeleted: true}) {"
    "    pageInfo { hasNextPage endCursor }"
    "    nodes {" + JOB_ALL_FIELDS + "    }"
    "  }"
    "}"
)

ENUMS = {
    "employment_type": {"FULL_TIME", "PART_TIME", "CONTRACT", "SEASONAL", "INTERNSHIP"},
    "status": {"OPEN", "CLOSED", "DRAFT", "ARCHIVED"},
    "visibility": {"PUBLIC", "INTERNAL", "UNLISTED", "CONFIDENTIAL"},
    "remote_work_status": {"REMOTE", "HYBRID", "TEMPORARY", "ON_SITE"},
    "salary_period": {"YEAR", "MONTH", "TWO_WEEKS", "WEEK", "DAY", "HOUR"},
}
POSTING_ENUMS = {
    "status": {"ACTIVE", "INACTIVE", "DRAFT"},
    "visibility": {"PUBLIC", "INTERNAL", "UNLISTED"},
}
ROLES = {"RECRUITER", "HIRING_MANAGER", "COORDINATOR", "SOURCER", "INTERVIEWER"}
FORMAT_MEMBERS = {
    "TEXT": "TextQuestionFormat",
    "NUMBER": "NumberQuestionFormat",
    "SINGLE_SELECT": "SingleSelectQuestionFormat",
    "MULTI_SELECT": "MultiSelectQuestionFormat",
    "BOOLEAN": "BooleanQuestionFormat",
    "DATE": "DateQuestionFormat",
    "FILE": "FileQuestionFormat",
    "INFORMATION": "InformationQuestionFormat",
}
DISPLAY_TYPES = {
    "TEXT": {"SINGLE_LINE", "MULTI_LINE", "EMAIL", "URL"},
    "NUMBER": {"SLIDER", "FIELD"},
    "SINGLE_SELECT": {"DROPDOWN", "RADIO"},
}


def gid(type_name: str, kombo_id: str) -> str:
    return base64.b64encode(f"{type_name}:{kombo_id}".encode()).decode()


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def enum_or_null(value: Any, allowed: set[str]) -> Any:
    return value if value in allowed else None


def sandbox_jobs(sandbox_url: str, integration: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {SANDBOX_API_KEY}", "X-Integration-Id": integration}
    params: dict[str, str] = {"page_size": "250", "include_deleted": "true"}
    jobs: list[dict[str, Any]] = []
    while True:
        body = httpx.get(f"{sandbox_url}/v1/ats/jobs", params=params, headers=headers).json()
        jobs += body["data"]["results"]
        if not body["data"]["next"]:
            return jobs
        params["cursor"] = body["data"]["next"]


def gateway_jobs(gql: GraphQLClient, integration: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    after = None
    while True:
        connection = gql.data(ALL_FIELDS, {"after": after}, {"X-Integration-Id": integration})
        jobs += connection["jobs"]["nodes"]
        if not connection["jobs"]["pageInfo"]["hasNextPage"]:
            return jobs
        after = connection["jobs"]["pageInfo"]["endCursor"]


@pytest.fixture(scope="module", params=SANDBOX_INTEGRATION_IDS)
def pairs(request: pytest.FixtureRequest, sandbox_url: str, gateway_url: str) -> list[Any]:
    """(Kombo record, gateway job) for every job of one integration, deleted ones included."""
    raw = sandbox_jobs(sandbox_url, request.param)
    served = gateway_jobs(GraphQLClient(gateway_url), request.param)
    assert [job["id"] for job in raw] == [job["komboId"] for job in served]
    return list(zip(raw, served, strict=True))


PLAIN_JOB_FIELDS = [
    "remote_id", "name", "job_code", "description", "confidential", "category", "department",
    "post_url", "remote_url", "experience_level", "salary_currency", "custom_fields",
    "opened_at", "closed_at", "remote_created_at", "remote_updated_at", "contact_id",
    "remote_data", "changed_at", "remote_deleted_at",
]  # fmt: skip
NUMBER_JOB_FIELDS = [
    "weekly_hours", "salary_amount", "salary_amount_from", "salary_amount_to",
]  # fmt: skip


def expected_job(raw: dict[str, Any]) -> dict[str, Any]:
    """The contract's mapping of a Kombo job onto `Job`, stated independently of the code."""
    expected: dict[str, Any] = {
        "__typename": "Job",
        "id": gid("Job", raw["id"]),
        "komboId": raw["id"],
    }
    for key in PLAIN_JOB_FIELDS:
        expected[camel(key)] = raw.get(key)
    for key in NUMBER_JOB_FIELDS:
        value = raw.get(key)
        expected[camel(key)] = None if value is None else float(value)
    for key, allowed in ENUMS.items():
        expected[camel(key)] = enum_or_null(raw.get(key), allowed)
        expected[camel(key) + "Raw"] = raw.get(key)
    location = raw.get("location")
    expected["location"] = (
        None
        if location is None
        else {
            camel(k).replace("_", ""): location.get(k)
            for k in ("city", "country", "raw", "state", "street_1", "street_2", "zip_code")
        }
    )
    expected["integrationFields"] = [
        {
            "id": gid("IntegrationField", f["id"]),
            "komboId": f["id"],
            "key": f.get("key"),
            "type": enum_or_null(f.get("type"), {"DEFAULT", "CUSTOM"}),
            "value": f.get("value"),
            "label": f.get("label"),
        }
        for f in raw.get("integration_fields") or []
    ]
    expected["stages"] = [
        {
            "id": gid("JobStage", s["id"]),
            "komboId": s["id"],
            "remoteId": s.get("remote_id"),
            "name": s.get("name"),
            "index": s.get("index"),
        }
        for s in raw.get("stages") or []
    ]
    questions = raw.get("screening_questions") or []
    expected["screeningQuestions"] = [expected_question(q, questions) for q in questions]
    expected["jobPostings"] = [
        {
            "id": gid("JobPosting", p["id"]),
            "komboId": p["id"],
            "remoteId": p.get("remote_id"),
            "title": p.get("title"),
            "descriptionHtml": p.get("description_html"),
            "status": enum_or_null(p.get("status"), POSTING_ENUMS["status"]),
            "statusRaw": p.get("status"),
            "visibility": enum_or_null(p.get("visibility"), POSTING_ENUMS["visibility"]),
            "visibilityRaw": p.get("visibility"),
            "url": p.get("url"),
            "remoteData": p.get("remote_data"),
        }
        for p in raw.get("job_postings") or []
    ]
    expected["hiringTeam"] = [
        {
            "id": gid("HiringTeamMember", m["id"]),
            "komboId": m["id"],
            "remoteId": m.get("remote_id"),
            "firstName": m.get("first_name"),
            "lastName": m.get("last_name"),
            "email": m.get("email"),
            "hiringTeamRoles": [r for r in m.get("hiring_team_roles") or [] if r in ROLES],
            "hiringTeamRolesRaw": list(m.get("hiring_team_roles") or []),
        }
        for m in raw.get("hiring_team") or []
    ]
    return expected


def expected_question(q: dict[str, Any], siblings: list[dict[str, Any]]) -> dict[str, Any]:
    options = q.get("precondition_options")
    wanted = q.get("precondition_question_id")
    precondition = next((s for s in siblings if wanted and s["id"] == wanted), None)
    return {
        "id": gid("ScreeningQuestion", q["id"]),
        "komboId": q["id"],
        "remoteId": q.get("remote_id"),
        "title": q.get("title"),
        "description": q.get("description"),
        "index": q.get("index"),
        "required": q.get("required"),
        "preconditionQuestionId": wanted,
        "preconditionOptions": None
        if options is None
        else [("true" if o else "false") if isinstance(o, bool) else o for o in options],
        "preconditionQuestion": None
        if precondition is None
        else {"komboId": precondition["id"], "title": precondition.get("title")},
        "format": expected_format(q.get("format")),
    }


def expected_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None:
        return None
    kind = fmt["type"]
    member = FORMAT_MEMBERS.get(kind, "UnknownQuestionFormat")
    expected: dict[str, Any] = {"__typename": member, "type": kind}
    display = enum_or_null(fmt.get("display_type"), DISPLAY_TYPES.get(kind, set()))
    options = [
        {
            "id": gid("QuestionOption", o["id"]),
            "komboId": o["id"],
            "remoteId": o.get("remote_id"),
            "name": o.get("name"),
        }
        for o in fmt.get("options") or []
    ]
    if kind == "TEXT":
        expected |= {"displayType": display, "maxLength": fmt.get("max_length")}
    elif kind == "NUMBER":
        expected |= {"numberDisplay": display, "min": _float(fmt.get("min"))}
        expected["max"] = _float(fmt.get("max"))
    elif kind == "SINGLE_SELECT":
        expected |= {"selectDisplay": display, "options": options}
    elif kind == "MULTI_SELECT":
        expected["options"] = options
    elif kind == "FILE":
        expected |= {
            "acceptedMimeTypes": fmt.get("accepted_mime_types"),
            "maxFileSizeBytes": fmt.get("max_file_size_bytes"),
        }
    elif member == "UnknownQuestionFormat":
        expected["raw"] = fmt.get("raw_question") if kind == "UNKNOWN" else fmt
    return expected


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def test_every_field_of_every_job_follows_the_contract(pairs: list[Any]):
    for raw, served in pairs:
        assert served == expected_job(raw), raw["id"]


def test_the_data_exercises_what_the_mapping_must_handle(pairs: list[Any]):
    """Guards the test above against passing on data too tame to prove anything."""
    raws = [raw for raw, _ in pairs]
    served = [job for _, job in pairs]
    assert any(job["remoteDeletedAt"] for job in served)
    assert any(job["location"] is None for job in served)
    if len(raws) > 100:  # the large integration carries every corner case
        for key, allowed in ENUMS.items():
            values = {raw.get(key) for raw in raws}
            assert allowed <= values, key
            assert values - allowed - {None}, f"no pass-through value for {key}"
        questions = [q for raw in raws for q in raw["screening_questions"]]
        kinds = {(q.get("format") or {}).get("type") for q in questions}
        assert set(FORMAT_MEMBERS) | {"UNKNOWN", None} <= kinds
        assert kinds - set(FORMAT_MEMBERS) - {"UNKNOWN", None}, "no unlisted format type"
        preconditions = [
            q["precondition_options"] for q in questions if q.get("precondition_options")
        ]
        assert any(isinstance(o[0], bool) for o in preconditions)
        assert any(isinstance(o[0], str) for o in preconditions)
        assert any(
            r for raw in raws for m in raw["hiring_team"] for r in m["hiring_team_roles"]
            if r not in ROLES
        )  # fmt: skip
        assert any(set(raw) - set(raws[0]) for raw in raws), "no record with an extra key"
        assert any(set(raws[0]) - set(raw) for raw in raws), "no record missing a key"
        # Kombo IDs are unique per model only; global IDs must still differ.
        shared = [
            (job, stage)
            for job in served
            for stage in job["stages"]
            if stage["komboId"] == job["komboId"]
        ]
        assert shared, "no job shares its Kombo ID with its own stage"
        assert all(job["id"] != stage["id"] for job, stage in shared)
