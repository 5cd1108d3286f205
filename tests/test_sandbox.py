"""The Kombo sandbox over real HTTP: Kombo's REST semantics, and the coverage of its data.

Expected results are computed in the tests from the full data set (fetched over HTTP with
`include_deleted=true`), so each filter case checks exact membership and order, not just
"something came back".
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from gateway.sandbox.app import create_sandbox_app
from gateway.sandbox.data import dataset, kombo_id
from tests.support import LiveServer

GREENHOUSE, PERSONIO = SANDBOX_INTEGRATION_IDS
AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}
KOMBO_ID_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{24}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
Job = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(sandbox: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, headers=AUTH, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def control(sandbox: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=30) as http:
        yield http


def get_jobs(
    client: httpx.Client, integration: str | None = GREENHOUSE, **params: Any
) -> httpx.Response:
    headers = {} if integration is None else {"X-Integration-Id": integration}
    return client.get("/ats/jobs", params=params, headers=headers)


def walk(client: httpx.Client, integration: str = GREENHOUSE, **params: Any) -> list[list[Job]]:
    """Every page of a listing, following `data.next` with the same parameters."""
    pages: list[list[Job]] = []
    cursor = None
    while True:
        extra: dict[str, str] = {} if cursor is None else {"cursor": cursor}
        response = get_jobs(client, integration, **params, **extra)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        pages.append(data["results"])
        cursor = data["next"]
        if cursor is None:
            return pages


def ids(jobs: list[Job]) -> list[str]:
    return [job["id"] for job in jobs]


@pytest.fixture(scope="module")
def all_jobs(client: httpx.Client) -> dict[str, list[Job]]:
    """Both integrations' complete data, deleted jobs included, as served."""
    result = {}
    for integration in SANDBOX_INTEGRATION_IDS:
        pages = walk(client, integration, page_size=250, include_deleted="true")
        result[integration] = [job for page in pages for job in page]
    return result


@pytest.fixture(scope="module")
def every_job(all_jobs: dict[str, list[Job]]) -> list[Job]:
    return [job for jobs in all_jobs.values() for job in jobs]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Kombo's error envelope, exactly."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    error = body["error"]
    assert set(error) == {"code", "title", "message", "log_url"}
    assert error["code"] == code
    assert isinstance(error["title"], str) and error["title"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["log_url"].startswith("https://app.kombo.dev/logs/")
    return dict(error)


# --------------------------------------------------------------------------------------------
# Filters: each alone, AND across parameters, OR inside a list
# --------------------------------------------------------------------------------------------

Params = Callable[[list[Job]], dict[str, str]]
Matches = Callable[[list[Job]], Callable[[Job], bool]]


def live(jobs: list[Job]) -> list[Job]:
    return [job for job in jobs if job["remote_deleted_at"] is None]


def nested_changed_us(job_id: str) -> int:
    """The hidden nested-change time; only the data module knows it."""
    for data in dataset().values():
        if job_id in data.by_id:
            return data.by_id[job_id].nested_changed_at_us
    raise KeyError(job_id)


def to_us(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


UPDATED_AFTER = "2026-04-01T00:00:00.000Z"
CREATED_AFTER = "2025-06-15T18:30:00.000Z"


def _codes(jobs: list[Job]) -> list[str]:
    return [job["job_code"] for job in live(jobs) if job["job_code"]][10:12]


def _urls(jobs: list[Job]) -> list[str]:
    return [job["post_url"] for job in live(jobs) if job["post_url"]][3:4]


FILTER_CASES = [
    pytest.param(
        lambda jobs: {"ids": live(jobs)[5]["id"]},
        lambda jobs: lambda j: j["id"] == live(jobs)[5]["id"],
        id="ids-one",
    ),
    pytest.param(
        lambda jobs: {"ids": f"{live(jobs)[9]['id']},{live(jobs)[5]['id']}"},
        lambda jobs: lambda j: j["id"] in (live(jobs)[5]["id"], live(jobs)[9]["id"]),
        id="ids-or",
    ),
    pytest.param(
        lambda jobs: {"remote_ids": f"{jobs[1]['remote_id']},{jobs[40]['remote_id']},nope"},
        lambda jobs: lambda j: j["remote_id"] in (jobs[1]["remote_id"], jobs[40]["remote_id"]),
        id="remote_ids-or",
    ),
    pytest.param(
        lambda jobs: {"job_codes": ",".join(_codes(jobs))},
        lambda jobs: lambda j: j["job_code"] in _codes(jobs),
        id="job_codes-or",
    ),
    pytest.param(
        lambda jobs: {"post_url": _urls(jobs)[0]},
        lambda jobs: lambda j: j["post_url"] == _urls(jobs)[0],
        id="post_url-exact",
    ),
    pytest.param(
        lambda jobs: {"name_contains": "PyThOn"},
        lambda jobs: lambda j: "python" in (j["name"] or "").lower(),
        id="name_contains-case-insensitive",
    ),
    pytest.param(
        lambda jobs: {"status": "CLOSED"},
        lambda jobs: lambda j: j["status"] == "CLOSED",
        id="status-deprecated",
    ),
    pytest.param(
        lambda jobs: {"statuses": "OPEN,DRAFT"},
        lambda jobs: lambda j: j["status"] in ("OPEN", "DRAFT"),
        id="statuses-or",
    ),
    pytest.param(
        lambda jobs: {"status": "OPEN", "statuses": "OPEN,CLOSED"},
        lambda jobs: lambda j: j["status"] == "OPEN",
        id="status-and-statuses",
    ),
    pytest.param(
        lambda jobs: {"status": "DRAFT", "statuses": "CLOSED"},
        lambda jobs: lambda j: False,
        id="status-and-statuses-disjoint",
    ),
    pytest.param(
        lambda jobs: {"employment_types": "PART_TIME,INTERNSHIP"},
        lambda jobs: lambda j: j["employment_type"] in ("PART_TIME", "INTERNSHIP"),
        id="employment_types-or",
    ),
    pytest.param(
        lambda jobs: {"employment_types": "FULL_TIME,PART_TIME,CONTRACT,SEASONAL,INTERNSHIP"},
        lambda jobs: (
            lambda j: (
                j["employment_type"]
                in ("FULL_TIME", "PART_TIME", "CONTRACT", "SEASONAL", "INTERNSHIP")
            )
        ),
        id="employment_types-canonical-only",
    ),
    pytest.param(
        lambda jobs: {"visibilities": "INTERNAL,CONFIDENTIAL"},
        lambda jobs: lambda j: j["visibility"] in ("INTERNAL", "CONFIDENTIAL"),
        id="visibilities-or",
    ),
    pytest.param(
        lambda jobs: {"remote_created_after": CREATED_AFTER},
        lambda jobs: (
            lambda j: (
                j["remote_created_at"] is not None
                and j["remote_created_at"][:10] >= CREATED_AFTER[:10]
            )
        ),
        id="remote_created_after-day",
    ),
    pytest.param(
        lambda jobs: {"updated_after": UPDATED_AFTER},
        lambda jobs: (
            lambda j: max(to_us(j["changed_at"]), nested_changed_us(j["id"])) > to_us(UPDATED_AFTER)
        ),
        id="updated_after-own-or-nested",
    ),
    pytest.param(
        lambda jobs: {"include_deleted": "true"},
        lambda jobs: lambda j: True,
        id="include_deleted",
    ),
    pytest.param(
        lambda jobs: {
            "statuses": "OPEN",
            "employment_types": "FULL_TIME",
            "visibilities": "PUBLIC",
        },
        lambda jobs: (
            lambda j: (
                (j["status"], j["employment_type"], j["visibility"])
                == ("OPEN", "FULL_TIME", "PUBLIC")
            )
        ),
        id="and-across-params",
    ),
    pytest.param(
        lambda jobs: {
            "name_contains": "engineer",
            "statuses": "OPEN,CLOSED",
            "include_deleted": "true",
        },
        lambda jobs: (
            lambda j: "engineer" in (j["name"] or "").lower() and j["status"] in ("OPEN", "CLOSED")
        ),
        id="and-with-deleted",
    ),
    pytest.param(
        lambda jobs: {"statuses": "OPEN", "unknown_param": "x", "foo": ""},
        lambda jobs: lambda j: j["status"] == "OPEN",
        id="unknown-params-ignored",
    ),
]


@pytest.mark.parametrize(("make_params", "make_matcher"), FILTER_CASES)
def test_filter(
    client: httpx.Client, all_jobs: dict[str, list[Job]], make_params: Params, make_matcher: Matches
) -> None:
    jobs = all_jobs[GREENHOUSE]
    params = make_params(jobs)
    matches = make_matcher(jobs)
    include_deleted = params.get("include_deleted") == "true"
    expected = [
        j["id"] for j in jobs if matches(j) and (include_deleted or not j["remote_deleted_at"])
    ]
    pages = walk(client, GREENHOUSE, page_size=250, **params)
    assert [job["id"] for page in pages for job in page] == expected
    if params.get("status") != "DRAFT":  # the one case designed to match nothing
        assert expected and expected != ids(live(jobs)), "the case must discriminate"


def test_updated_after_sees_nested_only_changes(
    client: httpx.Client, all_jobs: dict[str, list[Job]]
) -> None:
    """Some jobs match only through their (hidden) nested-change time, as Kombo documents."""
    threshold = to_us(UPDATED_AFTER)
    nested_only = [
        j["id"]
        for j in live(all_jobs[GREENHOUSE])
        if to_us(j["changed_at"]) <= threshold < nested_changed_us(j["id"])
    ]
    assert nested_only
    served = ids(
        [j for page in walk(client, updated_after=UPDATED_AFTER, page_size=250) for j in page]
    )
    assert set(nested_only) <= set(served)


@pytest.mark.parametrize(
    "value",
    ["2026-04-01T00:00:00Z", "2026-04-01T00:00:00+00:00", "2026-04-01T02:00:00.000+02:00",
     "2026-04-01T00:00:00.000000Z"],
    ids=["no-ms", "offset-utc", "offset-plus-2", "microseconds"],
)  # fmt: skip
def test_updated_after_formats_are_equivalent(client: httpx.Client, value: str) -> None:
    reference = ids(
        get_jobs(client, updated_after=UPDATED_AFTER, page_size=250).json()["data"]["results"]
    )
    response = get_jobs(client, updated_after=value, page_size=250)
    assert response.status_code == 200
    assert ids(response.json()["data"]["results"]) == reference


def test_remote_created_after_ignores_the_time_of_day(client: httpx.Client) -> None:
    morning = get_jobs(client, remote_created_after="2025-06-15T00:00:00.000Z", page_size=250)
    evening = get_jobs(client, remote_created_after="2025-06-15T23:59:59.999Z", page_size=250)
    assert morning.json()["data"] == evening.json()["data"]


def test_enum_filters_ignore_pass_through_values(
    client: httpx.Client, all_jobs: dict[str, list[Job]]
) -> None:
    werkstudent = [
        j["id"] for j in live(all_jobs[GREENHOUSE]) if j["employment_type"] == "Werkstudent"
    ]
    assert werkstudent
    every_type = "FULL_TIME,PART_TIME,CONTRACT,SEASONAL,INTERNSHIP"
    served = ids(
        [j for page in walk(client, employment_types=every_type, page_size=250) for j in page]
    )
    assert not set(werkstudent) & set(served)


def test_percent_encoded_commas(client: httpx.Client, control: httpx.Client) -> None:
    plain = get_jobs(client, statuses="OPEN,DRAFT", employment_types="FULL_TIME,CONTRACT")
    control.delete("/_sandbox/requests")
    encoded = client.get(
        "/ats/jobs?statuses=OPEN%2CDRAFT&employment_types=FULL_TIME%2cCONTRACT",
        headers={"X-Integration-Id": GREENHOUSE},
    )
    assert encoded.status_code == 200
    assert encoded.json() == plain.json()
    [entry] = control.get("/_sandbox/requests").json()["requests"]
    assert "%2C" in entry["query"]  # it really arrived encoded
    assert entry["params"]["statuses"] == "OPEN,DRAFT"


def test_list_order_and_duplicates_do_not_matter(
    client: httpx.Client, all_jobs: dict[str, list[Job]]
) -> None:
    a, b = live(all_jobs[GREENHOUSE])[3]["id"], live(all_jobs[GREENHOUSE])[7]["id"]
    forward = get_jobs(client, ids=f"{a},{b}")
    backward = get_jobs(client, ids=f"{b},{a},{b}")
    assert ids(forward.json()["data"]["results"]) == [a, b]
    assert forward.json() == backward.json()


# --------------------------------------------------------------------------------------------
# ids: validation, 404, deleted jobs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["short", "x" * 25, "", ","], ids=["short", "long", "empty-item", "comma"]
)
def test_ids_wrong_length(client: httpx.Client, all_jobs: dict[str, list[Job]], bad: str) -> None:
    good = all_jobs[GREENHOUSE][0]["id"]
    if bad in ("", ","):  # empty items are no IDs at all: nothing to validate
        assert get_jobs(client, ids=f"{good},{bad}").status_code == 200
        return
    error = assert_error(get_jobs(client, ids=f"{good},{bad}"), 400, "PLATFORM.INPUT_INVALID")
    assert "ids" in error["message"]


@pytest.mark.parametrize(
    "unknown",
    ["1" * 24, "other-integration"],
    ids=["never-existed", "id-of-other-integration"],
)
def test_unknown_id_fails_the_whole_request(
    client: httpx.Client, all_jobs: dict[str, list[Job]], unknown: str
) -> None:
    if unknown == "other-integration":
        unknown = all_jobs[PERSONIO][0]["id"]
    known = all_jobs[GREENHOUSE][0]["id"]
    error = assert_error(get_jobs(client, ids=f"{known},{unknown}"), 404, "PLATFORM.INPUT_INVALID")
    assert unknown not in error["message"] and known not in error["message"]


def test_deleted_id(client: httpx.Client, all_jobs: dict[str, list[Job]]) -> None:
    deleted = next(j["id"] for j in all_jobs[GREENHOUSE] if j["remote_deleted_at"])
    alive = live(all_jobs[GREENHOUSE])[0]["id"]
    hidden = get_jobs(client, ids=f"{deleted},{alive}")
    assert hidden.status_code == 200
    assert ids(hidden.json()["data"]["results"]) == [alive]
    shown = get_jobs(client, ids=f"{deleted},{alive}", include_deleted="true")
    assert set(ids(shown.json()["data"]["results"])) == {deleted, alive}


def test_include_deleted_default_hides_deleted(
    client: httpx.Client, all_jobs: dict[str, list[Job]]
) -> None:
    for integration in SANDBOX_INTEGRATION_IDS:
        default = [j for page in walk(client, integration, page_size=250) for j in page]
        explicit = [
            j
            for page in walk(client, integration, page_size=250, include_deleted="false")
            for j in page
        ]
        assert default == explicit == live(all_jobs[integration])


# --------------------------------------------------------------------------------------------
# Unsupported filters (personio supports neither job_codes nor post_url)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"job_codes": "ENG-2026-014"}, {"post_url": "personio"}],
    ids=["job_codes", "post_url"],
)
def test_unsupported_filters(
    client: httpx.Client, all_jobs: dict[str, list[Job]], params: dict[str, str]
) -> None:
    if "post_url" in params:
        params = {"post_url": next(j["post_url"] for j in all_jobs[PERSONIO] if j["post_url"])}
    strict = get_jobs(client, PERSONIO, **params, page_size=250)
    assert strict.status_code == 200
    assert strict.json()["data"] == {"next": None, "results": []}
    lenient = get_jobs(client, PERSONIO, **params, page_size=250, ignore_unsupported_filters="true")
    assert lenient.json()["data"]["results"] == live(all_jobs[PERSONIO])
    # greenhouse supports them: the flag changes nothing there
    supported = get_jobs(client, GREENHOUSE, **params, ignore_unsupported_filters="true")
    assert supported.json() == get_jobs(client, GREENHOUSE, **params).json()


def test_supported_filters_still_apply_when_ignoring(
    client: httpx.Client, all_jobs: dict[str, list[Job]]
) -> None:
    response = get_jobs(
        client, PERSONIO, job_codes="X", statuses="OPEN", ignore_unsupported_filters="true"
    )
    expected = [j for j in live(all_jobs[PERSONIO]) if j["status"] == "OPEN"]
    assert response.json()["data"]["results"] == expected


# --------------------------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("page_size", "0"), ("page_size", "251"), ("page_size", "abc"), ("page_size", "-1"),
        ("page_size", "1.5"), ("page_size", ""), ("status", "OPENED"), ("status", "open"),
        ("statuses", "OPEN,Open"), ("employment_types", "Werkstudent"),
        ("visibilities", "PUBLIC,SECRET"), ("include_deleted", "True"), ("include_deleted", "1"),
        ("ignore_unsupported_filters", "yes"), ("updated_after", "yesterday"),
        ("updated_after", "2026-13-01T00:00:00Z"), ("remote_created_after", "2026/01/01"),
    ],
    ids=lambda v: v or "empty",
)  # fmt: skip
def test_invalid_parameter(client: httpx.Client, param: str, value: str) -> None:
    error = assert_error(get_jobs(client, **{param: value}), 400, "PLATFORM.INPUT_INVALID")
    assert param in error["message"]


@pytest.mark.parametrize("size", [1, 250], ids=["min", "max"])
def test_page_size_bounds_are_inclusive(client: httpx.Client, size: int) -> None:
    response = get_jobs(client, page_size=size)
    assert len(response.json()["data"]["results"]) == size


# --------------------------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------------------------


def test_walk_all_greenhouse_jobs(client: httpx.Client) -> None:
    pages = walk(client, page_size=250, include_deleted="true")
    assert [len(page) for page in pages] == [250, 250, 250, 250, 200]
    walked = [job["id"] for page in pages for job in page]
    assert len(walked) == len(set(walked)) == 1200
    assert walked == [record.id for record in dataset()[GREENHOUSE].jobs]  # generation order
    again = [
        job["id"] for page in walk(client, page_size=250, include_deleted="true") for job in page
    ]
    assert again == walked


def test_default_page_size_is_100(client: httpx.Client) -> None:
    data = get_jobs(client).json()["data"]
    assert len(data["results"]) == 100
    assert isinstance(data["next"], str) and data["next"]


def test_small_result_has_no_next(client: httpx.Client) -> None:
    data = get_jobs(client, PERSONIO, page_size=250).json()["data"]
    assert data["next"] is None
    assert 0 < len(data["results"]) < 60


def first_cursor(client: httpx.Client, **params: Any) -> str:
    cursor = get_jobs(client, **params).json()["data"]["next"]
    assert isinstance(cursor, str)
    return cursor


@pytest.mark.parametrize(
    "follow_up",
    [
        {"page_size": "50", "statuses": "CLOSED"},
        {"page_size": "51", "statuses": "OPEN"},
        {"page_size": "50"},
        {"page_size": "50", "statuses": "OPEN", "include_deleted": "true"},
        {"page_size": "50", "statuses": "OPEN", "name_contains": "a"},
    ],
    ids=[
        "other-filter-value",
        "other-page-size",
        "filter-dropped",
        "include-deleted",
        "filter-added",
    ],
)
def test_cursor_is_bound_to_filters_and_page_size(
    client: httpx.Client, follow_up: dict[str, str]
) -> None:
    cursor = first_cursor(client, page_size=50, statuses="OPEN")
    error = assert_error(
        get_jobs(client, **follow_up, cursor=cursor), 400, "PLATFORM.INPUT_INVALID"
    )
    assert "cursor" in error["message"]


def test_cursor_is_bound_to_integration(client: httpx.Client) -> None:
    cursor = first_cursor(client, page_size=5)
    assert_error(
        get_jobs(client, PERSONIO, page_size=5, cursor=cursor), 400, "PLATFORM.INPUT_INVALID"
    )


def test_cursor_accepts_equivalent_parameters(client: httpx.Client) -> None:
    """Explicit defaults (as the SDK sends them), reordered lists and unknown params are fine."""
    cursor = first_cursor(client, page_size=50, statuses="OPEN,CLOSED")
    response = get_jobs(
        client, page_size=50, statuses="CLOSED,OPEN", include_deleted="false",
        ignore_unsupported_filters="false", cursor=cursor, utm="x",
    )  # fmt: skip
    assert response.status_code == 200
    assert len(response.json()["data"]["results"]) == 50


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", "%%%", base64.urlsafe_b64encode(b"12.zz").decode(), "MTI"],
    ids=["garbage", "not-base64", "bad-payload", "offset-only"],
)
def test_malformed_cursor(client: httpx.Client, cursor: str) -> None:
    error = assert_error(get_jobs(client, cursor=cursor), 400, "PLATFORM.INPUT_INVALID")
    assert "cursor" in error["message"]


# --------------------------------------------------------------------------------------------
# Authentication, integration header, other routes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ks_dev_wrong", f"Basic {SANDBOX_API_KEY}", "Bearer", SANDBOX_API_KEY],
    ids=["missing", "wrong-key", "wrong-scheme", "no-token", "no-scheme"],
)
@pytest.mark.parametrize("path", ["/ats/jobs", "/check-api-key"])
def test_unauthenticated(sandbox: LiveServer, authorization: str | None, path: str) -> None:
    headers = {"X-Integration-Id": GREENHOUSE}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.get(sandbox.base_url + path, headers=headers)
    assert_error(response, 401, "PLATFORM.AUTHENTICATION_INVALID")
    assert SANDBOX_API_KEY not in response.text


def test_missing_integration(client: httpx.Client) -> None:
    error = assert_error(get_jobs(client, integration=None), 400, "PLATFORM.INPUT_INVALID")
    assert "X-Integration-Id" in error["message"]


def test_unknown_integration(client: httpx.Client) -> None:
    response = get_jobs(client, integration="greenhouse:DoesNotExist1234567890ab")
    assert_error(response, 404, "PLATFORM.INTEGRATION_NOT_FOUND")


def test_check_api_key(client: httpx.Client) -> None:
    response = client.get("/check-api-key")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert set(body["data"]) == {"environment_id", "customer_id"}


def test_healthz(control: httpx.Client) -> None:
    response = control.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_unknown_v1_route(client: httpx.Client) -> None:
    assert_error(client.get("/ats/candidates"), 404, "PLATFORM.INPUT_INVALID")


def test_log_urls_differ_per_error(client: httpx.Client) -> None:
    first = get_jobs(client, page_size=0).json()["error"]["log_url"]
    second = get_jobs(client, page_size=0).json()["error"]["log_url"]
    assert first != second
    assert KOMBO_ID_RE.match(first.rsplit("/", 1)[1])


# --------------------------------------------------------------------------------------------
# Rate-limit headers
# --------------------------------------------------------------------------------------------


def rate(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["ratelimit-limit"]), int(h["ratelimit-remaining"]), int(h["ratelimit-reset"])


def test_rate_limit_headers_count_down() -> None:
    """On a sandbox of its own: the shared one's window for this key counts every test's
    calls, and may well be spent."""
    with (
        LiveServer(create_sandbox_app()) as sandbox,
        httpx.Client(base_url=sandbox.base_url, headers=AUTH) as client,
    ):
        first, second = rate(get_jobs(client, page_size=1)), rate(client.get("/check-api-key"))
    assert first[0] == second[0] == 300
    assert first[1] == 299
    assert second[1] == first[1] - 1
    assert 0 <= second[2] <= first[2] <= 60


def test_rate_limit_is_per_key_and_never_negative(sandbox: LiveServer) -> None:
    """305 requests with another key: that key's budget hits 0 and stays there, unenforced."""
    headers = {"Authorization": "Bearer ks_dev_flood"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as flood:
        responses = [flood.get("/check-api-key") for _ in range(305)]
    remaining = [rate(r)[1] for r in responses]
    assert remaining[:3] == [299, 298, 297]
    assert remaining[-6:] == [0] * 6
    assert {r.status_code for r in responses} == {401}


def test_error_responses_carry_rate_limit_headers(client: httpx.Client) -> None:
    assert rate(get_jobs(client, page_size="abc"))[0] == 300


# --------------------------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------------------------


def test_request_log(sandbox: LiveServer, client: httpx.Client, control: httpx.Client) -> None:
    assert control.delete("/_sandbox/requests").status_code == 204
    get_jobs(client, page_size=2, statuses="OPEN,DRAFT")
    get_jobs(client, PERSONIO, page_size=0)
    httpx.get(sandbox.base_url + "/ats/jobs", headers={"Authorization": "Bearer ks_dev_secret_x"})
    control.get("/healthz")  # not a /v1 request: not logged
    response = control.get("/_sandbox/requests")
    assert response.status_code == 200
    assert response.json() == {
        "requests": [
            {"method": "GET", "path": "/v1/ats/jobs", "query": "page_size=2&statuses=OPEN%2CDRAFT",
             "params": {"page_size": "2", "statuses": "OPEN,DRAFT"}, "integration": GREENHOUSE,
             "status": 200},
            {"method": "GET", "path": "/v1/ats/jobs", "query": "page_size=0",
             "params": {"page_size": "0"}, "integration": PERSONIO, "status": 400},
            {"method": "GET", "path": "/v1/ats/jobs", "query": "", "params": {},
             "integration": None, "status": 401},
        ]
    }  # fmt: skip
    assert SANDBOX_API_KEY not in response.text and "ks_dev_secret_x" not in response.text
    assert "Bearer" not in response.text
    control.delete("/_sandbox/requests")
    assert control.get("/_sandbox/requests").json() == {"requests": []}


def test_request_log_is_exact_under_concurrency(sandbox: LiveServer, control: httpx.Client) -> None:
    """Concurrent connections: every request is logged once, none lost or duplicated."""
    control.delete("/_sandbox/requests")
    headers = {**AUTH, "X-Integration-Id": GREENHOUSE}
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(base_url=sandbox.base_url, headers=headers, limits=limits) as http:

        def call(n: int) -> int:
            return http.get("/ats/jobs", params={"page_size": n % 250 + 1}).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(call, range(64)))
    assert statuses == [200] * 64
    entries = control.get("/_sandbox/requests").json()["requests"]
    assert sorted(int(e["params"]["page_size"]) for e in entries) == [
        n % 250 + 1 for n in range(64)
    ]


# --------------------------------------------------------------------------------------------
# Data coverage (asserted on what is served)
# --------------------------------------------------------------------------------------------


def stages(jobs: list[Job]) -> Iterator[Job]:
    return (s for j in jobs for s in j.get("stages", []))


def questions(jobs: list[Job]) -> Iterator[Job]:
    return (q for j in jobs for q in j["screening_questions"])


def formats(jobs: list[Job]) -> Iterator[Job]:
    return (q["format"] for q in questions(jobs) if q["format"] is not None)


def postings(jobs: list[Job]) -> Iterator[Job]:
    return (p for j in jobs for p in j["job_postings"])


def members(jobs: list[Job]) -> Iterator[Job]:
    return (m for j in jobs for m in j["hiring_team"])


def roles(jobs: list[Job]) -> Iterator[Job]:
    return (r for m in members(jobs) for r in m["job_roles"])


def values(items: Iterator[Job], key: str) -> list[Any]:
    """Every value of `key` (dicts included, hence a list); "<missing>" where the key is absent."""
    return [item.get(key, "<missing>") for item in items]


def _present(select: Callable[[list[Job]], Iterator[Job]], key: str, *expected: Any) -> Any:
    return pytest.param(select, key, expected, id=f"{key}:{'/'.join(map(str, expected))}")


def _jobs(jobs: list[Job]) -> Iterator[Job]:
    return iter(jobs)


def _text_formats(jobs: list[Job]) -> Iterator[Job]:
    return (f for f in formats(jobs) if f["type"] == "TEXT")


def _number_formats(jobs: list[Job]) -> Iterator[Job]:
    return (f for f in formats(jobs) if f["type"] == "NUMBER")


def _single_select_formats(jobs: list[Job]) -> Iterator[Job]:
    return (f for f in formats(jobs) if f["type"] == "SINGLE_SELECT")


def _integration_fields(jobs: list[Job]) -> Iterator[Job]:
    return (f for j in jobs for f in j["integration_fields"])


def _hiring_roles(jobs: list[Job]) -> Iterator[Job]:
    return ({"role": r} for m in members(jobs) for r in m["hiring_team_roles"])


ENUM_COVERAGE = [
    _present(_jobs, "employment_type", "FULL_TIME", "PART_TIME", "CONTRACT", "SEASONAL",
             "INTERNSHIP", None, "Werkstudent", "Freelance"),
    _present(_jobs, "status", "OPEN", "CLOSED", "DRAFT", "ARCHIVED", None, "On hold"),
    _present(_jobs, "visibility", "PUBLIC", "INTERNAL", "UNLISTED", "CONFIDENTIAL",
             "Referral only"),
    _present(_jobs, "remote_work_status", "REMOTE", "HYBRID", "TEMPORARY", "ON_SITE", "Flexible"),
    _present(_jobs, "salary_period", "YEAR", "MONTH", "TWO_WEEKS", "WEEK", "DAY", "HOUR",
             "QUARTER", None),
    _present(postings, "status", "ACTIVE", "INACTIVE", "DRAFT", None),
    _present(postings, "visibility", "PUBLIC", "INTERNAL", "UNLISTED", None),
    _present(_hiring_roles, "role", "RECRUITER", "HIRING_MANAGER", "COORDINATOR", "SOURCER",
             "INTERVIEWER", "HR_BUSINESS_PARTNER"),
    _present(roles, "unified_type", "RECRUITER", "HIRING_MANAGER", "COORDINATOR", "SOURCER",
             "INTERVIEWER", "ADMIN", None),
    _present(_integration_fields, "type", "DEFAULT", "CUSTOM"),
    _present(_text_formats, "display_type", "SINGLE_LINE", "MULTI_LINE", "EMAIL", "URL", None),
    _present(_number_formats, "display_type", "SLIDER", "FIELD"),
    _present(_single_select_formats, "display_type", "DROPDOWN", "RADIO"),
    _present(stages, "status", "ACTIVE", "INACTIVE", None, "<missing>"),
    _present(stages, "index", None, 0),
    _present(questions, "category", "EEO", "DEMOGRAPHIC", None),
    _present(formats, "type", "TEXT", "NUMBER", "SINGLE_SELECT", "MULTI_SELECT", "BOOLEAN",
             "DATE", "FILE", "INFORMATION", "UNKNOWN", "SIGNATURE"),
    _present(members, "email", None),
    _present(_jobs, "location", None),
    _present(_jobs, "custom_fields", None, {}),
    _present(_jobs, "remote_url", "<missing>"),
    _present(_jobs, "salary_amount", None),
]  # fmt: skip


@pytest.mark.parametrize(("select", "key", "expected"), ENUM_COVERAGE)
def test_value_coverage(
    every_job: list[Job],
    select: Callable[[list[Job]], Iterator[Job]],
    key: str,
    expected: tuple[Any, ...],
) -> None:
    seen = values(select(every_job), key)
    distinct = [v for n, v in enumerate(seen) if isinstance(v, dict | list) or v not in seen[:n]]
    missing = [value for value in expected if value not in distinct]
    assert not missing


def test_sizes_and_deleted_jobs(all_jobs: dict[str, list[Job]]) -> None:
    assert len(all_jobs[GREENHOUSE]) == 1200
    assert 50 <= len(all_jobs[PERSONIO]) <= 70
    for jobs in all_jobs.values():
        assert len(jobs) - len(live(jobs)) >= 3


JOB_KEYS = set(
    "id remote_id name job_code description confidential weekly_hours employment_type status "
    "visibility category department post_url experience_level remote_work_status salary_amount "
    "salary_amount_from salary_amount_to salary_currency salary_period location custom_fields "
    "integration_fields remote_url opened_at closed_at remote_created_at remote_updated_at "
    "contact_id remote_data changed_at remote_deleted_at stages screening_questions "
    "job_postings hiring_team".split()
)
NESTED_KEYS = {
    "stages": set("id remote_id name index status custom_fields".split()),
    "screening_questions": set(
        "id remote_id title description format category index required "
        "precondition_question_id precondition_options".split()
    ),
    "job_postings": set(
        "id remote_id title description_html status visibility url remote_data".split()
    ),
    "hiring_team": set(
        "id remote_id first_name last_name email hiring_team_roles job_roles".split()
    ),
    "integration_fields": set("id key type value label".split()),
}
LOCATION_KEYS = set("city country raw state street_1 street_2 zip_code".split())


def test_every_record_has_every_field_but_the_quirky_ones(every_job: list[Job]) -> None:
    """Every field of jobs-api.md §4/§5, except a couple of old-shape and extra-key records."""
    old = [j for j in every_job if "remote_url" not in j]
    extra = [j for j in every_job if "beta_score" in j]
    assert 1 < len(old) <= 3 and 1 < len(extra) <= 3
    assert all(j["beta_score"] == 3 for j in extra)
    assert all("status" not in j["stages"][0] for j in old)
    for job in every_job:
        quirks = {"remote_url"} if job in old else set()
        assert set(job) - {"beta_score"} == JOB_KEYS - quirks
        assert job["location"] is None or set(job["location"]) == LOCATION_KEYS
        for key, expected in NESTED_KEYS.items():
            for n, item in enumerate(job[key]):
                missing = {"status"} if job in old and key == "stages" and n == 0 else set()
                assert set(item) == expected - missing, (job["id"], key)
        for role in roles([job]):
            assert set(role) == {"remote_id", "remote_label", "unified_type", "scope"}


def test_unknown_format_has_raw_question_and_some_formats_are_null(every_job: list[Job]) -> None:
    unknown = [f for f in formats(every_job) if f["type"] == "UNKNOWN"]
    assert unknown and all("raw_question" in f for f in unknown)
    assert any(q["format"] is None for q in questions(every_job))
    listed = {"TEXT", "NUMBER", "SINGLE_SELECT", "MULTI_SELECT", "BOOLEAN", "DATE", "FILE",
              "INFORMATION", "UNKNOWN"}  # fmt: skip
    unlisted = [f for f in formats(every_job) if f["type"] not in listed]
    assert 1 < len(unlisted) < 20


def test_preconditions(every_job: list[Job]) -> None:
    """Every precondition points at a question of the same job, with options fitting its type."""
    seen: set[str] = set()
    for job in every_job:
        by_id = {q["id"]: q for q in job["screening_questions"]}
        for question in job["screening_questions"]:
            parent_id = question["precondition_question_id"]
            if parent_id is None:
                assert question["precondition_options"] is None
                continue
            parent = by_id[parent_id]
            kind = parent["format"]["type"]
            options = question["precondition_options"]
            if kind == "BOOLEAN":
                assert options in ([True], [False])
                seen.add(f"BOOLEAN{options}")
            else:
                option_ids = {o["id"] for o in parent["format"]["options"]}
                assert options and set(options) <= option_ids
                seen.add(kind)
    assert seen == {"BOOLEAN[True]", "BOOLEAN[False]", "SINGLE_SELECT", "MULTI_SELECT"}


def test_partial_and_empty_objects(every_job: list[Job]) -> None:
    locations = [j["location"] for j in every_job if j["location"]]
    assert any(sum(v is None for v in loc.values()) >= 4 for loc in locations)
    for key in ("stages", "screening_questions", "job_postings", "hiring_team"):
        assert any(j.get(key) == [] for j in every_job), key
    assert any(
        all(j[k] is None for k in ("salary_amount", "salary_amount_from", "salary_amount_to",
                                   "salary_currency", "salary_period"))
        for j in every_job
    )  # fmt: skip
    custom_types = {type(v) for j in every_job for v in (j["custom_fields"] or {}).values()}
    assert {str, bool, int, float, list, dict, type(None)} <= custom_types


def test_integration_fields_and_remote_data(every_job: list[Job]) -> None:
    assert any(j["integration_fields"] for j in every_job)
    with_raw = [j for j in every_job if j["remote_data"]]
    assert with_raw
    assert all(set(j["remote_data"]) == {f"/jobs/{j['remote_id']}"} for j in with_raw)
    assert any(p["remote_data"] for p in postings(every_job))


def test_kombo_ids(all_jobs: dict[str, list[Job]], every_job: list[Job]) -> None:
    job_ids = [j["id"] for j in every_job]
    assert len(job_ids) == len(set(job_ids))  # distinct across both integrations
    nested = [
        *(s["id"] for s in stages(every_job)),
        *(q["id"] for q in questions(every_job)),
        *(o["id"] for f in formats(every_job) for o in f.get("options", [])),
        *(p["id"] for p in postings(every_job)),
        *(m["id"] for m in members(every_job)),
        *(f["id"] for f in _integration_fields(every_job)),
    ]
    assert all(KOMBO_ID_RE.match(i) for i in [*job_ids, *nested])
    shared = [j for j in all_jobs[GREENHOUSE] if j["stages"] and j["stages"][0]["id"] == j["id"]]
    assert [(j["remote_id"], j["stages"][0]["remote_id"]) for j in shared] == [("7", "7")]
    assert kombo_id(GREENHOUSE, "7") == shared[0]["id"]
    assert kombo_id(PERSONIO, "7") != shared[0]["id"]


def test_names_codes_urls_and_times(every_job: list[Job]) -> None:
    names = {j["name"] for j in every_job}
    assert "Senior Backend Engineer (Python)" in names
    assert any(str(n).startswith("Werkstudent ") for n in names)
    assert len(names) > 300
    codes = [j["job_code"] for j in every_job if j["job_code"]]
    assert len(codes) == len(set(codes)) and all(
        re.match(r"^[A-Z]+-20\d\d-\d{3}$", c) for c in codes
    )
    urls = [j["post_url"] for j in every_job if j["post_url"]]
    assert len(urls) == len(set(urls)) > 100
    for key in ("remote_created_at", "changed_at"):
        assert {j[key][:4] for j in every_job if j[key]} == {"2024", "2025", "2026"}
    stamps = [j[k] for j in every_job for k in ("opened_at", "closed_at", "remote_created_at",
              "remote_updated_at", "changed_at", "remote_deleted_at") if j[k]]  # fmt: skip
    assert all(TIMESTAMP_RE.match(s) for s in stamps)


def test_hidden_nested_change_time_is_never_served(every_job: list[Job]) -> None:
    assert not any("nested" in key for job in every_job for key in job)
    records = [r for data in dataset().values() for r in data.jobs]
    assert any(r.nested_changed_at_us > r.changed_at_us for r in records)
    assert any(r.nested_changed_at_us <= r.changed_at_us for r in records)


def test_served_bytes_are_the_pre_encoded_ones(client: httpx.Client) -> None:
    body = get_jobs(client, page_size=3).content
    expected = b",".join([r.encoded for r in dataset()[GREENHOUSE].jobs if not r.deleted][:3])
    assert expected in body
    assert date.fromisoformat("2026-05-20") >= max(
        datetime.fromisoformat(r.job["changed_at"]).astimezone(UTC).date()
        for r in dataset()[GREENHOUSE].jobs
    )
