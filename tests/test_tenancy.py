"""Who may read what, over real HTTP: tokens, integrations, pass-through keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY, Settings, TokenSpec
from gateway.http.access import hash_token
from gateway.http.app import create_app
from tests.conftest import INTEGRATION_A, INTEGRATION_B
from tests.support import GraphQLClient, Upstream, error_codes, serve

TOKEN_A, TOKEN_B, TOKEN_ALL = (
    "token-for-a-0123456789",
    "token-for-b-0123456789",
    "token-all-01234567",
)
TOKENS = (
    TokenSpec("team-a", hash_token(TOKEN_A), frozenset({INTEGRATION_A}), INTEGRATION_A),
    TokenSpec("team-b", hash_token(TOKEN_B), frozenset({INTEGRATION_B}), INTEGRATION_B),
    TokenSpec("ops", hash_token(TOKEN_ALL), None, None),
)
LOOKUPS = {
    "job": "query($id: ID!) { r: job(id: $id) { komboId } }",
    "node": "query($id: ID!) { r: node(id: $id) { ... on Job { komboId } } }",
    "nodes": "query($id: ID!) { r: nodes(ids: [$id]) { ... on Job { komboId } } }",
    "entities": 'query($id: String!) { r: _entities(representations: [{__typename: "Job", '
    "komboId: $id}]) { ... on Job { komboId } } }",
}


def bearer(token: str, integration: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if integration:
        headers["X-Integration-Id"] = integration
    return headers


@pytest.fixture(scope="module")
def secured(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    settings = dataclasses.replace(gateway_settings, tokens=TOKENS, cache_ttl=30)
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


@pytest.fixture(scope="module")
def b_job(secured: GraphQLClient) -> str:
    """A job of integration B, read (and so cached) by team B."""
    data = secured.data("{ jobs(first: 5) { nodes { komboId } } }", headers=bearer(TOKEN_B))
    kombo_id: str = data["jobs"]["nodes"][0]["komboId"]
    return kombo_id


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="unknown-token"),
        pytest.param({"Authorization": f"Basic {TOKEN_A}"}, id="wrong-scheme"),
        pytest.param({"Authorization": f"Bearer {TOKEN_A}x"}, id="almost"),
    ],
)
def test_without_a_valid_token_nothing_is_served(
    secured: GraphQLClient, upstream: Upstream, headers: dict[str, str]
):
    response = secured.post("{ jobs(first: 1) { nodes { id } } }", headers=headers)
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert upstream.count() == 0


def test_a_token_uses_its_default_integration(secured: GraphQLClient, upstream: Upstream):
    secured.data("{ jobs(first: 1) { nodes { id } } }", headers=bearer(TOKEN_A))
    assert [call["integration"] for call in upstream.requests()] == [INTEGRATION_A]


def test_a_token_cannot_name_an_integration_it_may_not_use(
    secured: GraphQLClient, upstream: Upstream
):
    response = secured.post(
        "{ jobs(first: 1) { nodes { id } } }", headers=bearer(TOKEN_A, INTEGRATION_B)
    )
    assert response.status_code == 403
    assert error_codes(response.json()) == ["FORBIDDEN"]
    assert upstream.count() == 0


@pytest.mark.parametrize("path", list(LOOKUPS))
def test_a_token_cannot_read_another_integrations_job_by_any_path(
    secured: GraphQLClient, upstream: Upstream, b_job: str, path: str
):
    # Through its own integration: B's job simply does not exist there, cached or not.
    mine = secured.data(LOOKUPS[path], {"id": b_job}, headers=bearer(TOKEN_A))
    assert mine["r"] in (None, [None])
    assert {call["integration"] for call in upstream.requests()} <= {INTEGRATION_A}
    # Naming B's integration is refused before any call.
    upstream.reset()
    response = secured.post(LOOKUPS[path], {"id": b_job}, headers=bearer(TOKEN_A, INTEGRATION_B))
    assert response.status_code == 403
    assert upstream.count() == 0


def test_the_owner_still_reads_its_job(secured: GraphQLClient, b_job: str):
    data = secured.data(LOOKUPS["job"], {"id": b_job}, headers=bearer(TOKEN_B))
    assert data["r"] == {"komboId": b_job}


def test_an_all_integrations_token_without_default_must_choose(
    secured: GraphQLClient, upstream: Upstream
):
    query = "{ jobs(first: 1) { nodes { id } } }"
    assert len(secured.data(query, headers=bearer(TOKEN_ALL, INTEGRATION_B))["jobs"]["nodes"]) == 1
    # The gateway's own default integration (A) serves a token allowed everything.
    assert len(secured.data(query, headers=bearer(TOKEN_ALL))["jobs"]["nodes"]) == 1


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
def test_graphiql_page_needs_no_token(secured: GraphQLClient, accept: str):
    page = httpx.get(f"{secured.url}/graphql", headers={"Accept": accept})
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_a_program_without_a_token_gets_401_not_the_page(secured: GraphQLClient):
    # `*/*` (curl's default) is not a browser: it needs a token like any request.
    response = httpx.get(f"{secured.url}/graphql", headers={"Accept": "*/*"})
    assert response.status_code == 401


def test_introspection_needs_a_token(secured: GraphQLClient):
    assert secured.post("{ __schema { queryType { name } } }").status_code == 401
    assert secured.data("{ __schema { queryType { name } } }", headers=bearer(TOKEN_A))


@pytest.fixture(scope="module")
def passthrough(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    settings = dataclasses.replace(gateway_settings, key_passthrough=True, cache_ttl=30)
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


def test_pass_through_needs_the_callers_kombo_key(passthrough: GraphQLClient, upstream: Upstream):
    response = passthrough.post("{ jobs(first: 1) { nodes { id } } }")
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert upstream.count() == 0
    data = passthrough.data(
        "{ jobs(first: 1) { nodes { id } } }", headers={"X-Kombo-Api-Key": SANDBOX_API_KEY}
    )
    assert len(data["jobs"]["nodes"]) == 1


def test_pass_through_never_serves_one_keys_cache_to_another(
    passthrough: GraphQLClient, upstream: Upstream
):
    query = "{ jobs(first: 2) { nodes { id } } }"
    passthrough.data(query, headers={"X-Kombo-Api-Key": SANDBOX_API_KEY})
    upstream.reset()
    wrong = "ks_dev_somebody_elses_key_42"
    response = passthrough.post(query, headers={"X-Kombo-Api-Key": wrong})
    result: dict[str, Any] = response.json()
    assert error_codes(result) == ["UNAUTHENTICATED"]  # Kombo (the sandbox) rejected it
    assert upstream.count() == 1  # a call of its own, not the other key's cached page
    assert wrong not in response.text
