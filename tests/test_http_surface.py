"""The HTTP surface over real HTTP: who gets GraphiQL's page, and what every malformed
request, unknown path and wrong method is told (a coded JSON error saying what would work).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.config import Settings, TokenSpec
from gateway.http.access import hash_token
from gateway.http.app import create_app
from tests.support import Upstream, error_codes, serve

CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
QUERY = "{ jobs(first: 1) { nodes { id } } }"


def only_error(response: httpx.Response) -> dict[str, Any]:
    """The one coded error of a JSON error answer, which carries its request id."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert response.headers.get("x-request-id"), response.headers
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    found: dict[str, Any] = error
    return found


# --- GraphiQL's page: browsers only -------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param(CHROME, id="chrome"),
        pytest.param(FIREFOX, id="firefox"),
        pytest.param("text/html", id="text-html"),
        pytest.param("Text/HTML; q=0.5", id="any-case-with-q"),
        pytest.param("application/json;q=0.9, text/html;level=1", id="listed-second"),
    ],
)
def test_graphiql_is_served_to_requests_that_accept_html(gateway_url: str, accept: str):
    page = httpx.get(f"{gateway_url}/graphql", headers={"Accept": accept})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()
    # The same URL answers JSON to programs: caches must tell the two apart.
    assert page.headers["vary"] == "Accept"


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param("*/*", id="curl-and-fetch-default"),
        pytest.param(None, id="no-accept-header"),
        pytest.param("application/json", id="json"),
        pytest.param("application/graphql-response+json, application/json", id="graphql-client"),
        pytest.param("text/*", id="text-any"),
        pytest.param("text/html;q=0", id="html-refused"),
        pytest.param("text/html; q=0.000, */*", id="html-refused-star-accepted"),
        pytest.param("text/html;q=nope", id="unreadable-q"),
        pytest.param("application/xhtml+xml", id="xhtml-only"),
    ],
)
def test_a_get_without_query_from_a_program_is_told_what_to_send(
    gateway_url: str, upstream: Upstream, accept: str | None
):
    with httpx.Client() as client:
        request = client.build_request("GET", f"{gateway_url}/graphql")
        if accept is None:
            del request.headers["accept"]
        else:
            request.headers["accept"] = accept
        response = client.send(request)
    assert response.status_code == 400
    assert response.headers["vary"] == "Accept"
    message = only_error(response)["message"]
    assert "A query is required" in message
    assert "GET /graphql?query=" in message and "application/json" in message
    assert "GraphiQL" in message and "text/html" in message
    assert upstream.count() == 0


@pytest.fixture(scope="module")
def secured_url(gateway_settings: Settings) -> Iterator[str]:
    token = TokenSpec("team", hash_token("team-token-0123456789"), None, None)
    with serve(create_app(dataclasses.replace(gateway_settings, tokens=(token,)))) as url:
        yield url


def test_admission_and_the_page_follow_one_rule(secured_url: str):
    """The page skips admission (it needs no token); what is not the page is admitted.
    A request both see as the page, or both as a query, never gets a mix."""
    page = httpx.get(f"{secured_url}/graphql", headers={"Accept": FIREFOX})
    assert page.status_code == 200 and "<html" in page.text.lower()
    for accept in ("*/*", "text/html;q=0"):
        refused = httpx.get(f"{secured_url}/graphql", headers={"Accept": accept})
        assert refused.status_code == 401, (accept, refused.text)
        assert error_codes(refused.json()) == ["UNAUTHENTICATED"]


def test_with_graphiql_off_a_browser_is_told_so(gateway_settings: Settings, upstream: Upstream):
    with serve(create_app(dataclasses.replace(gateway_settings, graphiql=False))) as url:
        page = httpx.get(f"{url}/graphql", headers={"Accept": FIREFOX})
        program = httpx.get(f"{url}/graphql")
        elsewhere = httpx.get(f"{url}/nope")
    assert page.status_code == 404
    assert page.headers["vary"] == "Accept"
    assert "GraphiQL is turned off" in only_error(page)["message"]
    assert "GATEWAY_GRAPHIQL" in only_error(page)["message"]
    assert "GET /graphql?query=" in only_error(page)["message"]
    assert program.status_code == 400
    assert "GraphiQL is turned off" in only_error(program)["message"]
    assert "GraphiQL" not in only_error(elsewhere)["message"]
    assert upstream.count() == 0


# --- other paths and methods --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/graphql/x", "/graphiql/missing.js", "/"])
def test_an_unknown_path_is_a_coded_json_404_naming_the_paths(gateway_url: str, path: str):
    response = httpx.get(f"{gateway_url}{path}")
    assert response.status_code == 404
    message = only_error(response)["message"]
    for served in ("GET/POST /graphql", "GET /healthz", "GET /readyz", "GET /metrics"):
        assert served in message


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("POST", "/healthz", "GET, HEAD", id="post-healthz"),
        pytest.param("DELETE", "/readyz", "GET, HEAD", id="delete-readyz"),
        pytest.param("PUT", "/metrics", "GET, HEAD", id="put-metrics"),
        pytest.param("POST", "/graphiql/manifest.json", "GET, HEAD", id="post-asset"),
        pytest.param("PUT", "/graphql", "GET, POST", id="put-graphql"),
        pytest.param("DELETE", "/graphql", "GET, POST", id="delete-graphql"),
    ],
)
def test_a_wrong_method_is_a_coded_json_405_naming_the_right_ones(
    gateway_url: str, method: str, path: str, allow: str
):
    response = httpx.request(method, f"{gateway_url}{path}")
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    message = only_error(response)["message"]
    assert message.startswith(f"{method} is not supported")
    for allowed in allow.split(", "):
        assert allowed in message


# --- malformed GraphQL requests -------------------------------------------------------------

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "request_", "status", "says"),
    [
        pytest.param(
            "POST",
            {"content": QUERY, "headers": {"content-type": "text/plain"}},
            400,
            ["Unsupported Content-Type `text/plain`", "Content-Type: application/json", "GET "],
            id="content-type",
        ),
        pytest.param(
            "POST",
            {"content": b'{"query": "{ __typename }"}'},
            400,
            ["No Content-Type header", "Content-Type: application/json"],
            id="no-content-type",
        ),
        pytest.param(
            "POST",
            {"json": [{"query": QUERY}] * 11},
            400,
            ["a batch of 11", "at most 10", "GATEWAY_MAX_BATCH"],
            id="batch-too-large",
        ),
        pytest.param(
            "POST", {"json": []}, 400, ["The batch is empty", "1 to 10"], id="batch-empty"
        ),
        pytest.param(
            "POST",
            {"json": [{"query": QUERY}, 7]},
            400,
            ["Batch item 1 is a JSON number", '{"query"'],
            id="batch-item-not-an-object",
        ),
        pytest.param(
            "POST",
            {"content": b"{not json", "headers": JSON},
            400,
            ["not valid JSON", "line 1, column 2", '{"query"'],
            id="bad-json",
        ),
        pytest.param(
            "POST",
            {"json": "{ __typename }"},
            400,
            ["a JSON string", '{"query"', "batch"],
            id="body-not-an-object",
        ),
        pytest.param("POST", {"json": {}}, 400, ["no `query`", '{"query"'], id="post-no-query"),
        pytest.param(
            "GET",
            {"params": {"query": ""}, "headers": {"accept": "application/json"}},
            400,
            ["A query is required", "GET /graphql?query="],
            id="get-empty-query",
        ),
        pytest.param(
            "GET",
            {"params": {"query": QUERY, "variables": "{first: 1}"}},
            400,
            ["`variables` query parameter is not valid JSON", "variables=%7B%22first%22%3A5%7D"],
            id="get-variables-not-json",
        ),
        pytest.param(
            "GET",
            {"params": {"query": QUERY, "variables": "[1]"}},
            400,
            ["`variables` query parameter is a JSON array", "URL-encoded JSON object"],
            id="get-variables-not-an-object",
        ),
        pytest.param(
            "GET",
            {"params": {"query": QUERY, "extensions": "nope"}},
            400,
            ["`extensions` query parameter is not valid JSON"],
            id="get-extensions-not-json",
        ),
        pytest.param(
            "POST",
            {"json": {"query": QUERY, "operationName": "Nope"}},
            400,
            ['Unknown operation named "Nope"', "`operationName`"],
            id="unknown-operation",
        ),
        pytest.param(
            "POST",
            {"json": {"query": "fragment F on Query { __typename }"}},
            400,
            ["defines no operation"],
            id="no-operation",
        ),
        pytest.param(
            "GET",
            {"params": {"query": "mutation { x }"}},
            400,
            ["not allowed when using GET", "POST /graphql"],
            id="mutation-over-get",
        ),
        pytest.param(
            "OPTIONS",
            {},
            405,
            ["OPTIONS is not supported on /graphql", "GET /graphql?query=", "POST /graphql"],
            id="method",
        ),
    ],
)
def test_a_malformed_request_is_told_what_would_work(
    gateway_url: str,
    upstream: Upstream,
    method: str,
    request_: dict[str, Any],
    status: int,
    says: list[str],
):
    response = httpx.request(method, f"{gateway_url}/graphql", **request_)
    assert response.status_code == status, response.text
    message = only_error(response)["message"]
    for part in says:
        assert part in message
    assert upstream.count() == 0


def test_batches_switched_off_say_so(gateway_settings: Settings):
    with serve(create_app(dataclasses.replace(gateway_settings, max_batch=1))) as url:
        batch = httpx.post(f"{url}/graphql", json=[{"query": QUERY}] * 2)
        no_query = httpx.post(f"{url}/graphql", json={})
    assert batch.status_code == 400
    assert "GATEWAY_MAX_BATCH=1" in only_error(batch)["message"]
    assert "batch" not in only_error(no_query)["message"]


def test_get_variables_are_only_variables(gateway_url: str):
    """A variable may be named like a member of the request (`query`): over GET it was
    checked as if it were one, and the query was refused."""
    response = httpx.get(
        f"{gateway_url}/graphql",
        params={
            "query": "query($query: Int) { jobs(first: $query) { nodes { id } } }",
            "variables": '{"query": 1}',
        },
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["jobs"]["nodes"]) == 1


def test_a_document_of_several_operations_needs_an_operation_name(gateway_url: str):
    """Strawberry ran the first operation when the request named none; the spec requires
    `operationName` then, and a client that forgot it should be told, not guessed for."""
    document = "query A { __typename } query B { jobs(first: 1) { nodes { id } } }"
    url = f"{gateway_url}/graphql"
    unnamed = httpx.post(url, json={"query": document}).json()
    assert error_codes(unnamed) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "operationName" in unnamed["errors"][0]["message"]
    assert "data" not in unnamed or unnamed["data"] is None
    named = httpx.post(url, json={"query": document, "operationName": "B"}).json()
    assert "errors" not in named and len(named["data"]["jobs"]["nodes"]) == 1
