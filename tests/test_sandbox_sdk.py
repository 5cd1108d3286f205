"""The sandbox speaks real Kombo: every served job parses with the official SDK's model.

Pages are fetched over HTTP (`include_deleted=true`) and parsed exactly as `kombo` 1.4.0
parses a `GET /ats/jobs` 200 body (`kombo.utils.unmarshal_json` into
`GetAtsJobsPositiveResponse`). The only things stripped before parsing are the deliberate
deviations listed in `DEVIATIONS`, each of which must really occur and really be rejected
by the SDK on its own.

Plain validation proves little for screening-question formats, because the SDK silently
turns a format it cannot parse into UNSET; so each question's parsed format is also
checked to be the SDK class of its `type`.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pydantic
import pytest
from kombo import Kombo, models
from kombo.types.basemodel import Unset
from kombo.utils import unmarshal_json

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from gateway.sandbox.data import dataset
from tests.support import LiveServer

GREENHOUSE, PERSONIO = SANDBOX_INTEGRATION_IDS
Job = dict[str, Any]

#: Kombo passes unmapped roles through here, but the SDK's enum is closed: the page fails.
UNMAPPED_ROLE = "unmapped-role"
#: An old-shape record lacks a key that SDK 1.4.0 requires (the gateway reads it as null).
MISSING_KEY = "missing-key"

#: (job Kombo ID, JSON path inside the job, kind): every deliberate deviation, and no more.
DEVIATIONS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("qH8JTA3edDbgippzubNZnx5L", "hiring_team[0].hiring_team_roles[1]", UNMAPPED_ROLE),
        ("rgh9jrF5ur3ZVqSEEWkMN5oQ", "hiring_team[0].hiring_team_roles[2]", UNMAPPED_ROLE),
        ("4xg7c9vHCc9j8umy2aHazmkD", "hiring_team[0].hiring_team_roles[1]", UNMAPPED_ROLE),
        ("KUHqC4vAfeTdr7X4k88TSSVA", "hiring_team[0].hiring_team_roles[2]", UNMAPPED_ROLE),
        ("BhghGWXVL8GK4QPHsVTr8uTz", "hiring_team[0].hiring_team_roles[2]", UNMAPPED_ROLE),
        ("8Z3bXQQzn4zpNBKKhqVNn1Nz", "remote_url", MISSING_KEY),
        ("8Z3bXQQzn4zpNBKKhqVNn1Nz", "stages[0].status", MISSING_KEY),
        ("aL1gPUH5cof8U4qPm8k75EgV", "remote_url", MISSING_KEY),
        ("aL1gPUH5cof8U4qPm8k75EgV", "stages[0].status", MISSING_KEY),
    }
)

FORMAT_CLASSES: dict[str, type[Any]] = {
    "TEXT": models.FormatText,
    "NUMBER": models.FormatNumber,
    "SINGLE_SELECT": models.FormatSingleSelect,
    "MULTI_SELECT": models.FormatMultiSelect,
    "BOOLEAN": models.FormatBoolean,
    "DATE": models.FormatDate,
    "FILE": models.FormatFile,
    "INFORMATION": models.FormatInformation,
    "UNKNOWN": models.FormatUnknown,
}


# --------------------------------------------------------------------------------------------
# Fetching, stripping, parsing
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_pages(sandbox: LiveServer) -> dict[str, list[dict[str, Any]]]:
    """Every page of both integrations as served (deleted jobs included), decoded JSON."""
    pages: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"}
    ) as http:
        for integration in SANDBOX_INTEGRATION_IDS:
            pages[integration] = []
            params: dict[str, Any] = {"page_size": 250, "include_deleted": "true"}
            while True:
                response = http.get(
                    "/ats/jobs", params=params, headers={"X-Integration-Id": integration}
                )
                assert response.status_code == 200, response.text
                page = response.json()
                pages[integration].append(page)
                if page["data"]["next"] is None:
                    break
                params["cursor"] = page["data"]["next"]
    return pages


def parse(page: dict[str, Any]) -> models.GetAtsJobsPositiveResponse:
    """What the SDK does with a 200 body of GET /ats/jobs."""
    result = unmarshal_json(json.dumps(page), models.GetAtsJobsPositiveResponse)
    assert isinstance(result, models.GetAtsJobsPositiveResponse)
    return result


_PATH_TOKEN = re.compile(r"([a-z_0-9]+)|\[(\d+)\]")


def locate(job: Job, path: str) -> tuple[Any, str | int]:
    """The container holding the last step of `path`, and that step (key or index)."""
    steps: list[str | int] = [name or int(index) for name, index in _PATH_TOKEN.findall(path)]
    node: Any = job
    for step in steps[:-1]:
        node = node[step]
    return node, steps[-1]


def strip(job: Job, deviations: list[tuple[str, str, str]]) -> None:
    """Undo exactly the listed deviations of one job, asserting each is really there."""
    # Highest list index first, so removing one entry does not shift the next.
    for _, path, kind in sorted(deviations, key=lambda d: d[1], reverse=True):
        container, step = locate(job, path)
        if kind == UNMAPPED_ROLE:
            assert container[step] == "HR_BUSINESS_PARTNER", path
            del container[step]
        else:
            assert step not in container, f"{job['id']}: {path} is not missing"
            container[step] = None


def deviations_of(job_id: str) -> list[tuple[str, str, str]]:
    return [d for d in DEVIATIONS if d[0] == job_id]


@pytest.fixture(scope="module")
def stripped_pages(raw_pages: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    stripped: dict[str, list[dict[str, Any]]] = {}
    for integration, pages in raw_pages.items():
        stripped[integration] = copy.deepcopy(pages)
        for page in stripped[integration]:
            for job in page["data"]["results"]:
                strip(job, deviations_of(job["id"]))
    return stripped


@pytest.fixture(scope="module")
def parsed_pages(
    stripped_pages: dict[str, list[dict[str, Any]]],
) -> dict[str, list[models.GetAtsJobsPositiveResponse]]:
    return {
        integration: [parse(page) for page in pages]
        for integration, pages in stripped_pages.items()
    }


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("integration", SANDBOX_INTEGRATION_IDS, ids=["greenhouse", "personio"])
def test_every_job_validates_against_the_sdk(
    integration: str,
    stripped_pages: dict[str, list[dict[str, Any]]],
    parsed_pages: dict[str, list[models.GetAtsJobsPositiveResponse]],
) -> None:
    served = [job["id"] for page in stripped_pages[integration] for job in page["data"]["results"]]
    parsed = [job.id for page in parsed_pages[integration] for job in page.data.results]
    assert parsed == served
    assert len(served) == len(dataset()[integration].jobs)  # every job, deleted ones included
    assert [page.data.next is None for page in parsed_pages[integration]][-1]


def test_deviations_are_all_listed_jobs_of_the_sandbox() -> None:
    known = {job_id for data in dataset().values() for job_id in data.by_id}
    assert {job_id for job_id, _, _ in DEVIATIONS} <= known
    assert {kind for _, _, kind in DEVIATIONS} == {UNMAPPED_ROLE, MISSING_KEY}


@pytest.mark.parametrize("deviation", sorted(DEVIATIONS), ids=lambda d: f"{d[0]}:{d[1]}")
def test_each_deviation_alone_is_rejected_by_the_sdk(
    deviation: tuple[str, str, str], raw_pages: dict[str, list[dict[str, Any]]]
) -> None:
    """Strip every other deviation of the job: this one alone must still fail the page."""
    job = next(
        copy.deepcopy(j)
        for pages in raw_pages.values()
        for page in pages
        for j in page["data"]["results"]
        if j["id"] == deviation[0]
    )
    strip(job, [d for d in deviations_of(job["id"]) if d != deviation])
    with pytest.raises(pydantic.ValidationError):
        parse({"status": "success", "data": {"next": None, "results": [job]}})


def test_each_question_format_parses_to_its_own_sdk_class(
    stripped_pages: dict[str, list[dict[str, Any]]],
    parsed_pages: dict[str, list[models.GetAtsJobsPositiveResponse]],
) -> None:
    seen: set[str | None] = set()
    for integration, pages in stripped_pages.items():
        for raw_page, parsed_page in zip(pages, parsed_pages[integration], strict=True):
            for raw_job, job in zip(
                raw_page["data"]["results"], parsed_page.data.results, strict=True
            ):
                for raw, question in zip(
                    raw_job["screening_questions"], job.screening_questions, strict=True
                ):
                    seen.add(check_format(raw["format"], question.format_))
    assert seen == {*FORMAT_CLASSES, "<unlisted>", None}


def check_format(raw: dict[str, Any] | None, parsed: Any) -> str | None:
    """Assert one parsed format against what was served; returns what kind it was."""
    if raw is None:
        assert parsed is None
        return None
    expected = FORMAT_CLASSES.get(raw["type"])
    if expected is None:  # a type Kombo does not list: the SDK drops it to UNSET
        assert isinstance(parsed, Unset), raw
        return "<unlisted>"
    assert isinstance(parsed, expected), (raw, parsed)
    assert parsed.TYPE == raw["type"]
    if "options" in raw:
        assert [o.id for o in parsed.options] == [o["id"] for o in raw["options"]]
    if raw["type"] == "UNKNOWN":
        assert parsed.raw_question == raw["raw_question"]
    if "display_type" in raw and raw["type"] != "NUMBER":
        assert parsed.display_type == raw["display_type"]
    return str(raw["type"])


def test_sdk_keeps_pass_through_job_enums(
    parsed_pages: dict[str, list[models.GetAtsJobsPositiveResponse]],
) -> None:
    jobs = [job for pages in parsed_pages.values() for page in pages for job in page.data.results]
    kept = {
        (field, getattr(job, field))
        for job in jobs
        for field in (
            "employment_type",
            "status",
            "visibility",
            "remote_work_status",
            "salary_period",
        )
    }
    expected = {
        ("employment_type", "Werkstudent"),
        ("employment_type", "Freelance"),
        ("status", "On hold"),
        ("visibility", "Referral only"),
        ("remote_work_status", "Flexible"),
        ("salary_period", "QUARTER"),
    }
    assert expected <= kept


def test_the_sdk_client_itself_reads_the_sandbox(sandbox: LiveServer) -> None:
    """End to end with `kombo.Kombo`: its auth, %2C-encoded lists, datetimes and `next()`."""
    deviating = {job_id for job_id, _, _ in DEVIATIONS}
    wanted = [r.id for r in dataset()[GREENHOUSE].jobs if not r.deleted and r.id not in deviating][
        :30
    ]
    with Kombo(
        api_key=SANDBOX_API_KEY, integration_id=GREENHOUSE, server_url=sandbox.base_url
    ) as sdk:
        response = sdk.ats.get_jobs(
            ids=wanted,
            page_size=7,
            statuses=["OPEN", "CLOSED", "DRAFT", "ARCHIVED"],
            updated_after=datetime(2020, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        )
        received: list[str] = []
        pages = 0
        while response is not None:
            received += [job.id for job in response.result.data.results]
            pages += 1
            response = response.next()
    expected = [
        job_id
        for job_id in wanted
        if dataset()[GREENHOUSE].by_id[job_id].status in ("OPEN", "CLOSED", "DRAFT", "ARCHIVED")
    ]
    assert received == expected
    assert pages == -(-len(expected) // 7)
