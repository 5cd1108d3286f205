"""HTTP caching of `/graphql` over real HTTP: ETag and 304s on GET, `Cache-Control`
(`private, max-age=N`, `no-store` on errors and POST), and `Vary` per configuration."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY, Settings, TokenSpec
from gateway.http.access import hash_token
from gateway.http.app import create_app
from gateway.http.http_caching import body_digest, none_match, strong_etag
from tests.support import serve

TOKEN = "token-http-caching-0123"
QUERY = "{ jobs(first: 2) { nodes { id name } } }"


@pytest.fixture(scope="module")
def cached_url(gateway_settings: Settings) -> Iterator[str]:
    with serve(create_app(dataclasses.replace(gateway_settings, cache_ttl=30))) as url:
        yield url


def get(url: str, query: str = QUERY, **headers: str) -> httpx.Response:
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    return httpx.get(f"{url}/graphql", params={"query": query}, headers=headers, timeout=30)


def max_age(response: httpx.Response) -> int:
    directives = [part.strip() for part in response.headers["Cache-Control"].split(",")]
    assert directives[0] == "private", directives
    return int(directives[1].removeprefix("max-age="))


# --- a successful GET ------------------------------------------------------------------------


def test_a_successful_get_carries_a_strong_etag_freshness_and_vary(cached_url: str):
    response = get(cached_url)
    assert response.status_code == 200 and "errors" not in response.json()
    assert response.headers["ETag"] == strong_etag(body_digest(response.content))
    assert not response.headers["ETag"].startswith("W/")
    assert 0 < max_age(response) <= 30
    assert response.headers["Vary"] == "X-Integration-Id"


def test_equal_bodies_have_equal_tags_and_other_bodies_other_tags(cached_url: str):
    first, again = get(cached_url), get(cached_url)
    assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    other = get(cached_url, "{ jobs(first: 3) { nodes { id name } } }")
    assert other.headers["ETag"] != first.headers["ETag"]


def test_max_age_counts_down_with_the_data(cached_url: str):
    first = max_age(get(cached_url, "{ jobs(first: 4) { nodes { id } } }"))
    time.sleep(1.1)
    later = max_age(get(cached_url, "{ jobs(first: 4) { nodes { id } } }"))
    assert later < first


@pytest.mark.parametrize(
    "if_none_match",
    [
        pytest.param("{tag}", id="the-tag"),
        pytest.param("W/{tag}", id="weak-comparison"),
        pytest.param('"other", {tag}', id="in-a-list"),
        pytest.param("*", id="any"),
    ],
)
def test_a_matching_if_none_match_gets_304_without_a_body(cached_url: str, if_none_match: str):
    tag = get(cached_url).headers["ETag"]
    response = get(cached_url, If_None_Match=if_none_match.format(tag=tag))
    assert response.status_code == 304
    assert response.content == b""
    assert "content-type" not in response.headers
    assert response.headers["ETag"] == tag
    assert max_age(response) > 0
    assert response.headers["Vary"] == "X-Integration-Id"


def test_a_stale_tag_gets_the_whole_answer(cached_url: str):
    response = get(cached_url, If_None_Match='"not-this-one", W/"nor-this"')
    assert response.status_code == 200 and response.json()["data"]["jobs"]


def test_a_304_round_trips_through_a_revalidating_client(cached_url: str):
    first = get(cached_url)
    again = get(cached_url, If_None_Match=first.headers["ETag"])
    assert (again.status_code, again.headers["ETag"]) == (304, first.headers["ETag"])
    # The client keeps serving `first.content`: it is still what the gateway answers.
    assert get(cached_url).content == first.content


def test_with_the_cache_off_max_age_is_zero_and_tags_still_work(gateway_url: str):
    response = get(gateway_url)  # the session's gateway: GATEWAY_CACHE_TTL=0
    assert response.headers["Cache-Control"] == "private, max-age=0"
    again = get(gateway_url, If_None_Match=response.headers["ETag"])
    assert again.status_code == 304


# --- errors and POST: no-store ------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"query": '{ job(id: "nope") { id } }'}, 200, id="graphql-error"),
        pytest.param({"query": "{ jobs(first: 1) { nodes { nope } } }"}, 200, id="invalid"),
        pytest.param({"query": "{"}, 200, id="unparsable"),
        pytest.param({"query": QUERY, "variables": "[1]"}, 400, id="malformed-request"),
        pytest.param({"query": "mutation { x }"}, 400, id="mutation-over-get"),
    ],
)
def test_any_answer_with_an_error_is_no_store(cached_url: str, params: dict[str, str], status: int):
    response = httpx.get(f"{cached_url}/graphql", params=params)
    assert response.status_code == status
    assert response.json()["errors"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


def test_a_partial_answer_is_no_store(cached_url: str):
    response = get(cached_url, '{ ok: jobs(first: 1) { nodes { id } } bad: job(id: "x") { id } }')
    assert response.json()["data"]["ok"] and response.json()["errors"]
    assert response.headers["Cache-Control"] == "no-store"


def test_refusals_are_no_store(gateway_settings: Settings):
    tokens = (TokenSpec("web", hash_token(TOKEN), None, None),)
    settings = dataclasses.replace(gateway_settings, tokens=tokens, cache_ttl=30)
    with serve(create_app(settings)) as url:
        unauthenticated = get(url)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["Cache-Control"] == "no-store"
        ok = get(url, Authorization=f"Bearer {TOKEN}")
        assert ok.headers["Vary"] == "Authorization, X-Integration-Id"


def test_post_answers_are_no_store_and_ignore_if_none_match(cached_url: str):
    tag = get(cached_url).headers["ETag"]
    response = httpx.post(
        f"{cached_url}/graphql", json={"query": QUERY}, headers={"If-None-Match": tag}
    )
    assert response.status_code == 200 and response.json()["data"]["jobs"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


def test_with_pass_through_keys_vary_names_the_key_header(gateway_settings: Settings):
    settings = dataclasses.replace(gateway_settings, key_passthrough=True, cache_ttl=30)
    with serve(create_app(settings)) as url:
        response = get(url, X_Kombo_Api_Key=SANDBOX_API_KEY)
        assert response.headers["Vary"] == "X-Integration-Id, X-Kombo-Api-Key"


def test_graphiqls_page_keeps_its_own_vary(cached_url: str):
    page = httpx.get(f"{cached_url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["Vary"] == "Accept"
    assert "ETag" not in page.headers


# --- If-None-Match, as a function -----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "matches"),
    [
        pytest.param(['"a"'], True, id="equal"),
        pytest.param(['W/"a"'], True, id="weak-sent"),
        pytest.param(['"b", "a"'], True, id="list"),
        pytest.param(['"b"', '"a"'], True, id="two-lines"),
        pytest.param([" * "], True, id="star"),
        pytest.param(['"b"'], False, id="other"),
        pytest.param(['"a'], False, id="unterminated"),
        pytest.param([""], False, id="empty"),
        pytest.param([], False, id="absent"),
    ],
)
def test_if_none_match(values: list[str], matches: bool):
    assert none_match(values, '"a"') is matches
