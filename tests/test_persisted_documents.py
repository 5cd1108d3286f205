"""Persisted documents over real HTTP (contract section 10): automatic persisted queries
with Apollo's error shapes, trusted documents from both file formats selected every way,
persisted-only mode, and the refusals; GET and POST.

Each gateway here runs in-process (uvicorn on a free port) against the session's sandbox.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gateway.config import ConfigError, Settings
from gateway.http.app import create_app
from tests.redis_server import redis_server
from tests.support import Upstream, serve, wait_until

JOBS = "query Jobs { jobs(first: 3) { edges { node { id name } } } }"
JOB_NAMES = "query JobNames($first: Int = 2) { jobs(first: $first) { nodes { name } } }"
NOT_FOUND = {
    "message": "PersistedQueryNotFound",
    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
}
NOT_SUPPORTED = {
    "message": "PersistedQueryNotSupported",
    "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}


def post(url: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=30)


def get(url: str, **params: Any) -> httpx.Response:
    encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    return httpx.get(f"{url}/graphql", params=encoded, timeout=30)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def names(body: dict[str, Any]) -> list[str]:
    """The job names of a `JOBS` or `JOB_NAMES` answer, which must have no error."""
    assert "errors" not in body, body
    jobs = body["data"]["jobs"]
    nodes = jobs["nodes"] if "nodes" in jobs else [edge["node"] for edge in jobs["edges"]]
    assert nodes and all(node["name"] for node in nodes)
    return [node["name"] for node in nodes]


def relay_file(directory: Path, documents: dict[str, str]) -> str:
    path = directory / "persisted-queries.json"
    path.write_text(json.dumps(documents))
    return str(path)


def apollo_manifest(directory: Path, documents: dict[str, str]) -> str:
    path = directory / "persisted-query-manifest.json"
    operations = [
        {"id": key, "body": text, "name": text.split()[1], "type": "query"}
        for key, text in documents.items()
    ]
    manifest = {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
    path.write_text(json.dumps(manifest))
    return str(path)


@pytest.fixture(scope="module")
def open_url(gateway_settings: Settings) -> Iterator[str]:
    """APQ on (the default), no trusted documents."""
    with serve(create_app(gateway_settings)) as url:
        yield url


# --- automatic persisted queries ------------------------------------------------------------


def test_an_unknown_hash_is_not_found_with_apollos_shape_and_status(open_url: str):
    text = "query Unknown { jobs(first: 1) { nodes { id } } }"
    for response in (
        post(open_url, {"extensions": apq(text)}),
        get(open_url, extensions=apq(text)),
    ):
        assert response.status_code == 200  # Apollo's link reads the body, then retries
        assert response.json() == {"errors": [NOT_FOUND]}
        assert response.headers["cache-control"] == "no-store"  # no CDN keeps the miss


def test_registration_then_hash_only_over_post_and_get(open_url: str, upstream: Upstream):
    text = "query Registered { jobs(first: 4) { nodes { id name } } }"
    assert post(open_url, {"extensions": apq(text)}).json() == {"errors": [NOT_FOUND]}
    registered = post(open_url, {"query": text, "extensions": apq(text)})
    assert registered.status_code == 200
    expected = names(registered.json())
    assert names(post(open_url, {"extensions": apq(text)}).json()) == expected
    by_get = get(open_url, extensions=apq(text))
    assert by_get.status_code == 200 and names(by_get.json()) == expected
    # A registered hash over GET answers like a GET with the text: HTTP caching too.
    assert by_get.headers["etag"] and "max-age" in by_get.headers["cache-control"]
    again = httpx.get(by_get.url, headers={"If-None-Match": by_get.headers["etag"]}, timeout=30)
    assert again.status_code == 304 and again.content == b""


def test_a_hash_that_is_not_the_documents_is_refused_and_nothing_is_stored(open_url: str):
    text = "query Mismatch { jobs(first: 5) { nodes { id } } }"
    other = {"persistedQuery": {"version": 1, "sha256Hash": sha256(text + " ")}}
    for response in (
        post(open_url, {"query": text, "extensions": other}),
        get(open_url, query=text, extensions=other),
    ):
        assert response.status_code == 400
        assert codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert post(open_url, {"extensions": other}).json() == {"errors": [NOT_FOUND]}


def test_a_document_that_does_not_validate_is_answered_with_its_error_and_not_stored(
    open_url: str,
):
    text = "query Invalid { jobs(first: 1) { nodes { noSuchField } } }"
    response = post(open_url, {"query": text, "extensions": apq(text)})
    assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert post(open_url, {"extensions": apq(text)}).json() == {"errors": [NOT_FOUND]}


HASH = json.dumps("a" * 64)


@pytest.mark.parametrize(
    "persisted",
    [
        '"not an object"',
        f'{{"version": 2, "sha256Hash": {HASH}}}',
        '{"version": 1, "sha256Hash": "not-hex"}',
        '{"version": 1}',
        f'{{"version": [[[[]]]], "sha256Hash": {HASH}}}',
        # Nested deeper than Python's recursion limit (JSON parsers take 1,024 levels).
        f'{{"version": {"[" * 1_000 + "]" * 1_000}, "sha256Hash": {HASH}}}',
    ],
    ids=["not-an-object", "version-2", "not-hex", "no-hash", "version-list", "version-deep"],
)
def test_a_malformed_persisted_query_is_bad_user_input(open_url: str, persisted: str):
    response = httpx.post(
        f"{open_url}/graphql",
        content=f'{{"extensions": {{"persistedQuery": {persisted}}}}}',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert "persistedQuery" in response.json()["errors"][0]["message"]


def test_a_batch_answers_each_item_and_a_miss_fails_only_its_own(open_url: str):
    missing = "query Missing { jobs(first: 6) { nodes { id } } }"
    response = post(open_url, [{"extensions": apq(missing)}, {"query": JOB_NAMES}])
    assert response.status_code == 200
    first, second = response.json()
    assert first == {"data": None, "errors": [NOT_FOUND]}
    assert names(second)


def test_with_apq_off_hashes_are_not_supported_but_trusted_ones_run(
    gateway_settings: Settings, tmp_path: Path
):
    trusted = relay_file(tmp_path, {"names": JOB_NAMES})
    settings = dataclasses.replace(gateway_settings, apq=False, persisted_documents=trusted)
    with serve(create_app(settings)) as url:
        for body in ({"extensions": apq(JOBS)}, {"query": JOBS, "extensions": apq(JOBS)}):
            for response in (post(url, body), get(url, **body)):
                assert response.status_code == 200
                assert response.json() == {"errors": [NOT_SUPPORTED]}
        assert names(post(url, {"query": JOBS}).json())  # the text alone still runs
        # A trusted document's hash is no registration: it runs with APQ off too.
        assert names(get(url, extensions=apq(JOB_NAMES)).json())


def test_with_redis_a_document_registered_on_one_replica_answers_another(
    gateway_settings: Settings,
):
    text = "query Shared { jobs(first: 7) { nodes { id name } } }"
    with redis_server() as server:
        settings = dataclasses.replace(gateway_settings, redis_url=server.url)
        with serve(create_app(settings)) as a, serve(create_app(settings)) as b:
            assert post(b, {"extensions": apq(text)}).json() == {"errors": [NOT_FOUND]}
            expected = names(post(a, {"query": text, "extensions": apq(text)}).json())
            assert names(get(b, extensions=apq(text)).json()) == expected
            # What Redis holds under a hash must be that hash's text, or it is a miss.
            key = f"{settings.redis_prefix}:apq:{sha256(JOBS)}"
            redis.Redis.from_url(server.url).set(key, text.encode())
            assert post(b, {"extensions": apq(JOBS)}).json() == {"errors": [NOT_FOUND]}


# --- trusted documents ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["relay", "apollo"])
def trusted_url(
    request: pytest.FixtureRequest,
    gateway_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Trusted documents from either file format: `JOBS` under the id "jobs-1" and
    `JOB_NAMES` under its SHA-256 (what both tools write by default)."""
    directory = tmp_path_factory.mktemp(request.param)
    documents = {"jobs-1": JOBS, sha256(JOB_NAMES): JOB_NAMES}
    write = relay_file if request.param == "relay" else apollo_manifest
    settings = dataclasses.replace(
        gateway_settings, persisted_documents=write(directory, documents)
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.mark.parametrize(
    "selector",
    [
        {"documentId": "jobs-1"},
        {"doc_id": "jobs-1"},
        {"documentId": f"sha256:{sha256(JOBS)}"},
        {"documentId": f"SHA256:{sha256(JOBS).upper()}"},
        {"extensions": apq(JOBS)},
    ],
    ids=["documentId", "doc_id", "sha256-prefix", "sha256-upper", "apq-hash"],
)
def test_a_trusted_document_runs_by_every_selector_over_post_and_get(
    trusted_url: str, selector: dict[str, Any]
):
    by_post = post(trusted_url, selector)
    assert by_post.status_code == 200 and len(names(by_post.json())) == 3
    by_get = get(trusted_url, **selector)
    assert by_get.status_code == 200 and names(by_get.json()) == names(by_post.json())


def test_a_trusted_document_takes_its_variables(trusted_url: str):
    answer = post(trusted_url, {"documentId": sha256(JOB_NAMES), "variables": {"first": 4}})
    assert len(names(answer.json())) == 4


def test_an_unknown_id_is_not_found_over_post_and_get(trusted_url: str):
    for response in (post(trusted_url, {"documentId": "nope"}), get(trusted_url, doc_id="nope")):
        assert response.status_code == 200
        assert response.json() == {"errors": [NOT_FOUND]}


def test_an_id_with_a_text_is_refused(trusted_url: str):
    response = post(trusted_url, {"documentId": "jobs-1", "query": JOBS})
    assert response.status_code == 400 and codes(response.json()) == ["BAD_USER_INPUT"]


def test_an_id_that_is_not_a_string_is_refused(trusted_url: str):
    response = post(trusted_url, {"documentId": 7})
    assert response.status_code == 400 and codes(response.json()) == ["BAD_USER_INPUT"]
    assert "`documentId` must be a string" in response.json()["errors"][0]["message"]


def test_without_persisted_only_other_documents_still_run(trusted_url: str):
    assert names(post(trusted_url, {"query": "{ jobs(first: 1) { nodes { name } } }"}).json())


def test_an_id_and_its_text_share_one_response_cache_entry(
    gateway_settings: Settings, tmp_path: Path, upstream: Upstream
):
    """The response cache keys the text a request runs, however it was named."""
    settings = dataclasses.replace(
        gateway_settings, cache_ttl=30, persisted_documents=relay_file(tmp_path, {"j": JOBS})
    )
    with serve(create_app(settings)) as url:
        expected = names(post(url, {"query": JOBS}).json())
        calls = upstream.count()
        assert names(post(url, {"documentId": "j"}).json()) == expected
        assert names(post(url, {"documentId": f"sha256:{sha256(JOBS)}"}).json()) == expected
        assert upstream.count() == calls
        assert post(url, {"query": JOB_NAMES}).status_code == 200
        assert upstream.count() == calls + 1  # the control: another text is another entry


# --- start-up -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "problem"),
    [
        ({"good": JOBS, "bad-1": "query Bad { jobs { nodes { nope } } }"}, "bad-1: Cannot query"),
        ({"broken": "query { jobs("}, "broken: Syntax Error"),
        ({"deep": "{" + "jobs(first: 1) { nodes { id " * 1 + "}}}"}, None),
    ],
)
def test_a_document_that_does_not_validate_stops_start_up_naming_its_id(
    gateway_settings: Settings, tmp_path: Path, documents: dict[str, str], problem: str | None
):
    settings = dataclasses.replace(
        gateway_settings, persisted_documents=relay_file(tmp_path, documents)
    )
    if problem is None:  # the control: a valid file starts
        create_app(settings)
        return
    with pytest.raises(ConfigError) as raised:
        create_app(settings)
    assert problem in str(raised.value) and "GATEWAY_PERSISTED_DOCUMENTS" in str(raised.value)


def test_the_abuse_limits_hold_for_trusted_documents(gateway_settings: Settings, tmp_path: Path):
    deep = "query Deep { jobs(first: 1) { nodes { stages { id } } } }"
    settings = dataclasses.replace(
        gateway_settings, max_depth=2, persisted_documents=relay_file(tmp_path, {"deep": deep})
    )
    with pytest.raises(ConfigError, match="deep: .*maximum depth of 2"):
        create_app(settings)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '["a list"]',
        '{"id": 5}',
        '{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}',
        '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id": "x"}]}',
    ],
)
def test_a_file_in_neither_format_stops_start_up(
    gateway_settings: Settings, tmp_path: Path, content: str
):
    path = tmp_path / "documents.json"
    path.write_text(content)
    settings = dataclasses.replace(gateway_settings, persisted_documents=str(path))
    with pytest.raises(ConfigError, match="GATEWAY_PERSISTED_DOCUMENTS"):
        create_app(settings)


# --- persisted-only -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def only_url(gateway_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("only")
    settings = dataclasses.replace(
        gateway_settings,
        persisted_only=True,
        persisted_documents=relay_file(directory, {"jobs-1": JOBS}),
    )
    with serve(create_app(settings)) as url:
        yield url


def test_persisted_only_runs_trusted_documents_however_selected(only_url: str):
    for body in ({"doc_id": "jobs-1"}, {"extensions": apq(JOBS)}, {"query": JOBS}):
        assert len(names(post(only_url, body).json())) == 3
    assert len(names(get(only_url, documentId="jobs-1").json())) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ jobs(first: 1) { nodes { id } } }"},
        {"query": JOBS + " "},  # one byte away from a trusted document
        {
            "query": "{ jobs(first: 1) { nodes { id } } }",
            "extensions": apq("{ jobs(first: 1) { nodes { id } } }"),
        },
        {"query": "x" * 40_000},  # refused before it is parsed: no GRAPHQL_PARSE_FAILED
        [{"doc_id": "jobs-1"}, {"query": "{ jobs(first: 1) { nodes { id } } }"}],
    ],
    ids=["text", "near-copy", "apq-registration", "garbage", "batch"],
)
def test_persisted_only_refuses_any_other_document(only_url: str, body: Any):
    response = post(only_url, body)
    assert response.status_code == 400
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]


def test_persisted_only_never_registers_nor_finds_apq_documents(only_url: str):
    text = "query Other { jobs(first: 2) { nodes { id } } }"
    assert post(only_url, {"extensions": apq(text)}).json() == {"errors": [NOT_FOUND]}
    post(only_url, {"query": text, "extensions": apq(text)})
    assert post(only_url, {"extensions": apq(text)}).json() == {"errors": [NOT_FOUND]}


def test_persisted_only_refuses_free_text_over_get(only_url: str):
    response = get(only_url, query="{ jobs(first: 1) { nodes { id } } }")
    assert response.status_code == 400
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]


INTROSPECTION = "query IntrospectionQuery { __schema { queryType { name } } }"


def test_persisted_only_follows_the_introspection_setting(
    only_url: str, gateway_settings: Settings, tmp_path: Path
):
    answer = post(only_url, {"query": INTROSPECTION}).json()
    assert answer["data"]["__schema"]["queryType"]["name"] == "Query"
    # A document that introspects and asks for data is not introspection.
    mixed = "{ __schema { queryType { name } } jobs(first: 1) { nodes { id } } }"
    assert codes(post(only_url, {"query": mixed}).json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    closed = dataclasses.replace(
        gateway_settings,
        introspection=False,
        persisted_only=True,
        persisted_documents=relay_file(tmp_path, {"jobs-1": JOBS}),
    )
    with serve(create_app(closed)) as url:
        response = post(url, {"query": INTROSPECTION})
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_IN_LIST"]


def test_persisted_only_still_serves_graphiqls_page(only_url: str):
    page = httpx.get(f"{only_url}/graphql", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and "graphiql" in page.text.lower()


# --- what operators see ---------------------------------------------------------------------


def test_metrics_and_the_log_line_name_the_document(
    trusted_url: str, open_url: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="gateway.requests")
    assert names(post(trusted_url, {"documentId": "jobs-1"}).json())
    post(trusted_url, {"documentId": "jobs-1", "variables": {"unused": 1}})
    text = "query Logged { jobs(first: 8) { nodes { id name } } }"
    post(open_url, {"query": text, "extensions": apq(text)})
    lines = request_lines(caplog, count=3)
    assert [line.__dict__["documents"] for line in lines] == [
        ["jobs-1"],
        ["jobs-1"],
        [f"apq:{sha256(text)}"],
    ]
    metrics = httpx.get(f"{trusted_url}/metrics", timeout=30).text
    assert 'gateway_persisted_document_requests_total{document="jobs-1",status="200"}' in metrics
    assert 'gateway_persisted_document_duration_seconds_count{document="jobs-1"}' in metrics
    # APQ documents share one label: anyone can register documents, labels stay bounded.
    open_metrics = httpx.get(f"{open_url}/metrics", timeout=30).text
    assert 'gateway_persisted_document_requests_total{document="apq",status="200"}' in open_metrics
    assert sha256(text) not in open_metrics


def request_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    """The request log lines, once `count` are there (each is written after its answer)."""
    wait_until(
        lambda: len([r for r in caplog.records if r.name == "gateway.requests"]) >= count,
        5,
        "the request log lines",
    )
    return [r for r in caplog.records if r.name == "gateway.requests"]
