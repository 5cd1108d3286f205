"""Every contract error code over real HTTP, with Kombo's details, and never the API key."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY, Settings
from gateway.http.app import create_app
from gateway.http.serving import free_port
from tests.support import GraphQLClient, Upstream, error_codes, serve

QUERY = "{ jobs(first: 3) { nodes { komboId } } }"


def only_error(result: dict[str, Any]) -> dict[str, Any]:
    assert result["data"] is None or result["data"].get("jobs") is None
    (error,) = result["errors"]
    error_: dict[str, Any] = error
    return error_


def test_parse_error(gql: GraphQLClient, upstream: Upstream):
    assert error_codes(gql.execute("{ jobs(")) == ["GRAPHQL_PARSE_FAILED"]
    assert upstream.count() == 0


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{ jobs { nodes { nope } } }", id="unknown-field"),
        pytest.param('{ jobs(first: "ten") { nodes { id } } }', id="wrong-argument-type"),
        pytest.param('{ jobs(filter: {updatedAfter: "yesterday"}) { nodes { id } } }', id="bad-dt"),
        pytest.param("{ job { id } }", id="missing-required-argument"),
    ],
)
def test_validation_errors(gql: GraphQLClient, upstream: Upstream, query: str):
    assert error_codes(gql.execute(query)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert upstream.count() == 0


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        pytest.param(
            "POST",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            id="bad-json",
        ),
        pytest.param("POST", {"json": {}}, id="no-query"),
        pytest.param("POST", {"json": {"query": 5}}, id="query-not-a-string"),
        pytest.param(
            "POST", {"json": {"query": QUERY, "variables": [1]}}, id="variables-not-an-object"
        ),
        pytest.param(
            "POST", {"content": QUERY, "headers": {"content-type": "text/plain"}}, id="content-type"
        ),
        pytest.param("PUT", {"json": {"query": QUERY}}, id="method"),
        pytest.param("POST", {"json": [{"query": QUERY}] * 11}, id="batch-too-large"),
        pytest.param("POST", {"json": [1, 2]}, id="batch-of-non-objects"),
        pytest.param(
            "POST", {"json": {"query": QUERY, "operationName": "Nope"}}, id="unknown-operation"
        ),
    ],
)
def test_malformed_http_requests_get_coded_json_errors(
    gateway_url: str, upstream: Upstream, method: str, kwargs: dict[str, Any]
):
    response = httpx.request(method, f"{gateway_url}/graphql", **kwargs)
    assert 400 <= response.status_code < 500
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_a_variable_of_the_wrong_type_is_bad_user_input(gql: GraphQLClient, upstream: Upstream):
    result = gql.execute("query($n: Int) { jobs(first: $n) { nodes { id } } }", {"n": "many"})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_no_integration_is_bad_user_input_without_upstream_call(
    gateway_settings: Settings, upstream: Upstream
):
    settings = dataclasses.replace(gateway_settings, integration_id=None)
    with serve(create_app(settings)) as url:
        result = GraphQLClient(url).execute(QUERY)
        lookup = GraphQLClient(url).execute('{ job(id: "1111111111111111111111Zz") { id } }')
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "X-Integration-Id" in result["errors"][0]["message"]
    assert error_codes(lookup) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_a_malformed_integration_header_is_bad_user_input(gql: GraphQLClient, upstream: Upstream):
    result = gql.execute(QUERY, headers={"X-Integration-Id": "not an integration"})
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert upstream.count() == 0


def test_an_unknown_integration_is_forbidden(gql: GraphQLClient):
    error = only_error(
        gql.execute(QUERY, headers={"X-Integration-Id": "workday:NoSuchIntegration1"})
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["kombo"]["code"] == "PLATFORM.INTEGRATION_NOT_FOUND"


def test_rejected_credentials_are_unauthenticated_and_the_key_is_never_shown(
    gateway_settings: Settings,
):
    wrong_key = "ks_dev_this_key_is_wrong_1234567890"
    with serve(create_app(dataclasses.replace(gateway_settings, api_key=wrong_key))) as url:
        response = GraphQLClient(url).post(QUERY)
    error = only_error(response.json())
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    kombo = error["extensions"]["kombo"]
    assert kombo["code"] == "PLATFORM.AUTHENTICATION_INVALID"
    assert kombo["httpStatus"] == 401
    assert kombo["logUrl"].startswith("https://")
    assert wrong_key not in response.text
    assert "ks_dev_this_key" not in response.text


@pytest.mark.parametrize(
    ("fault", "code", "kombo_code"),
    [
        pytest.param(
            {"status": 400, "kombo_code": "PLATFORM.INPUT_INVALID", "message": "page_size is off"},
            "UPSTREAM_ERROR",
            "PLATFORM.INPUT_INVALID",
            id="400-input-invalid",
        ),
        pytest.param(
            {"status": 409, "kombo_code": "INTEGRATION.SETUP_SYNC_PENDING"},
            "UPSTREAM_ERROR",
            "INTEGRATION.SETUP_SYNC_PENDING",
            id="409-setup-pending",
        ),
        pytest.param(
            {"status": 503, "kombo_code": "INTEGRATION.SETUP_SYNC_PENDING"},
            "UPSTREAM_ERROR",
            "INTEGRATION.SETUP_SYNC_PENDING",
            id="legacy-503-setup-pending-code-wins",
        ),
        pytest.param(
            {"status": 503, "kombo_code": "REMOTE.SERVICE_UNAVAILABLE", "times": 10},
            "UPSTREAM_UNAVAILABLE",
            "REMOTE.SERVICE_UNAVAILABLE",
            id="503-remote-unavailable",
        ),
        pytest.param(
            {"status": 500, "kombo_code": "PLATFORM.UNKNOWN_ERROR", "times": 10},
            "UPSTREAM_UNAVAILABLE",
            "PLATFORM.UNKNOWN_ERROR",
            id="500",
        ),
        pytest.param(
            {
                "status": 503,
                "body": "<html>503 Service Temporarily Unavailable</html>",
                "times": 10,
            },
            "UPSTREAM_UNAVAILABLE",
            None,
            id="load-balancer-503-html",
        ),
        pytest.param(
            {"status": 401, "kombo_code": "PLATFORM.AUTHENTICATION_INVALID"},
            "UNAUTHENTICATED",
            "PLATFORM.AUTHENTICATION_INVALID",
            id="401",
        ),
        pytest.param(
            {"status": 404, "kombo_code": "PLATFORM.INPUT_INVALID"},
            "UPSTREAM_ERROR",
            "PLATFORM.INPUT_INVALID",
            id="404",
        ),
    ],
)
def test_kombo_errors_map_to_contract_codes_with_kombo_details(
    gql: GraphQLClient, faults: Any, fault: dict[str, Any], code: str, kombo_code: str | None
):
    faults(fault)
    response = gql.post(QUERY)
    error = only_error(response.json())
    assert error["extensions"]["code"] == code
    kombo = error["extensions"]["kombo"]
    assert set(kombo) == {"code", "title", "message", "logUrl", "httpStatus"}
    assert kombo["code"] == kombo_code
    assert kombo["httpStatus"] == fault["status"]
    if "message" in fault:
        assert kombo["message"] == fault["message"]
    assert SANDBOX_API_KEY not in response.text


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        # Longer than the test gateway's 3 s deadline: it gives up at once and says so.
        pytest.param({"Retry-After": "7"}, 7, id="retry-after"),
        pytest.param({"ratelimit-reset": "6.2"}, 7, id="ratelimit-reset-rounded-up"),
        pytest.param({"ratelimit-reset": "oops"}, None, id="unknown"),
    ],
)
def test_rate_limits_are_rate_limited_with_retry_after(
    gateway_settings: Settings, faults: Any, headers: dict[str, str], retry_after: int | None
):
    faults(
        {
            "status": 429,
            "kombo_code": "PLATFORM.RATE_LIMIT_EXCEEDED",
            "headers": headers,
            "times": 10,
        }
    )
    # A gateway of its own: Kombo's delay holds the integration's calls in the gateway
    # that saw it (docs/resilience.md), which the other tests must not inherit.
    with serve(create_app(gateway_settings)) as url:
        error = only_error(GraphQLClient(url).execute(QUERY))
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"].get("retryAfter") == retry_after
    if retry_after is not None:
        assert isinstance(error["extensions"]["retryAfter"], int)


def test_unreachable_kombo_is_upstream_unavailable(gateway_settings: Settings):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with serve(create_app(dataclasses.replace(gateway_settings, base_url=closed))) as url:
        error = only_error(GraphQLClient(url).execute(QUERY))
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert "kombo" not in error["extensions"]


def test_a_failing_field_does_not_fail_its_siblings(gql: GraphQLClient, faults: Any):
    # By-ID look-ups fail upstream; the list beside them still resolves. (`jobs` itself is
    # non-null in the contract, so its failure would null the whole response.)
    faults(
        {
            "status": 503,
            "kombo_code": "REMOTE.SERVICE_UNAVAILABLE",
            "match_params": {"include_deleted": "true"},
            "times": 10,
        }
    )
    result = gql.execute(
        '{ broken: job(id: "1111111111111111111111Zz") { id }'
        " fine: jobs(first: 2) { nodes { id } } }"
    )
    assert error_codes(result) == ["UPSTREAM_UNAVAILABLE"]
    assert result["errors"][0]["path"] == ["broken"]
    assert result["data"]["broken"] is None
    assert len(result["data"]["fine"]["nodes"]) == 2


def test_a_job_without_its_id_is_kombos_error_not_ours(gql: GraphQLClient, faults: Any):
    # Kombo answering 200 with a page whose job lacks its `id`: the page is not Kombo's
    # shape (it was an INTERNAL_SERVER_ERROR, and `id: null` was served as "None").
    faults(
        {
            "status": 200,
            "body": {"status": "success", "data": {"next": None, "results": [{"name": "x"}]}},
        }
    )
    response = gql.post("{ jobs(first: 1) { nodes { komboId } } }")
    codes = error_codes(response.json())
    assert codes == ["UPSTREAM_ERROR"]
    assert "None" not in response.text
    assert "Traceback" not in response.text and "KeyError" not in response.text
