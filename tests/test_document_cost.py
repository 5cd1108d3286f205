"""What a document costs the worker before it runs: bounded, refused cheaply, and paid for.

An attack probe found that a 1 MB invalid document took ~350 ms to lex, and that parse
errors are not cached: 2.8 such requests a second from one token moved another caller's
p50 from 2.4 ms to 294 ms. Now a document over `GATEWAY_MAX_DOCUMENT_BYTES` is refused
before it is lexed, like any document that cannot be parsed; one the gateway has not
prepared yet costs its caller's rate limit in proportion to its size; and the two parts
of preparing a document that were not linear in its size are bounded (graphql-core's
check that fields can be merged, and compiling projections).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLSyntaxError, get_introspection_query

from bench.queries import QUERIES
from gateway.config import Settings
from gateway.http.app import create_app
from gateway.observability.metrics import GatewayMetrics
from gateway.schema.build import QueryLimits, build_schema
from gateway.schema.document_shape import ShapeLimits
from gateway.schema.fastpath.projection import CompileBudget, _projectors_of
from gateway.schema.operation import (
    COST_BYTES,
    DocumentTooLarge,
    PreparedDocuments,
)
from gateway.schema.private_api import graphql_schema
from tests.support import GraphQLClient, Upstream, error_codes, fragment_chain, serve
from tests.test_projection import SOURCE_JOBS, context, fallbacks

#: Bounds how long things take: `make test` runs it alone, after the rest.
pytestmark = pytest.mark.serial

#: The default document size limit (GATEWAY_MAX_DOCUMENT_BYTES), from its one source.
MAX_DOCUMENT_BYTES = Settings().max_document_bytes


def documents(max_document_bytes: int = MAX_DOCUMENT_BYTES) -> PreparedDocuments:
    return PreparedDocuments(
        rules=(),
        max_tokens=20_000,
        size=16,
        shape=ShapeLimits(max_fields=2_000, max_depth=15),
        max_document_bytes=max_document_bytes,
    )


# --- the size limit -------------------------------------------------------------------------


def test_a_megabyte_document_is_refused_before_it_is_lexed():
    """It took ~350 ms to lex, to be refused then; now the refusal costs microseconds."""
    invalid = "{ " + "a(" * 500_000
    prepared = documents()
    started = time.perf_counter()
    with pytest.raises(DocumentTooLarge) as refused:
        prepared.document(invalid)
    elapsed = time.perf_counter() - started

    assert str(refused.value) == (
        f"The document is larger than GATEWAY_MAX_DOCUMENT_BYTES={MAX_DOCUMENT_BYTES}"
        " bytes: pass values as variables rather than writing them into it"
    )
    assert elapsed < 0.01
    assert len(prepared.cache) == 0


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        pytest.param("{ __typename }" + " " * (1024 - 14), True, id="at-the-limit"),
        pytest.param("{ __typename }" + " " * (1025 - 14), False, id="one-byte-over"),
        # 1,024 code points, but é is two bytes in UTF-8: the limit is in bytes.
        pytest.param("{ __typename }#" + "é" * (1024 - 15), False, id="multibyte-over"),
        pytest.param("{ __typename }#" + "é" * 504, True, id="multibyte-under"),
    ],
)
def test_the_limit_counts_utf8_bytes(text: str, accepted: bool):
    prepared = documents(max_document_bytes=1024)
    if accepted:
        assert prepared.document(text) is prepared.document(text)
    else:
        with pytest.raises(DocumentTooLarge, match="GATEWAY_MAX_DOCUMENT_BYTES=1024"):
            prepared.document(text)


def test_parse_errors_stay_syntax_errors_below_the_limit():
    with pytest.raises(GraphQLSyntaxError, match="Expected Name, found <EOF>"):
        documents().document("{ jobs(")


@pytest.fixture(scope="module")
def small_documents(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    settings = dataclasses.replace(gateway_settings, max_document_bytes=2048)
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


def test_over_http_it_is_a_parse_failure_naming_the_setting_like_any_other(
    small_documents: GraphQLClient, upstream: Upstream
):
    url = f"{small_documents.url}/graphql"
    too_large = "{ jobs(first: 1) { nodes { id } } }" + " " * 2048
    answers = {
        "syntax": httpx.post(url, json={"query": "{ jobs("}),
        "post": httpx.post(url, json={"query": too_large}),
        "get": httpx.get(url, params={"query": too_large}, headers={"accept": "application/json"}),
    }
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "syntax": 200,
        "post": 200,
        "get": 200,
    }
    for name in ("post", "get"):
        body = answers[name].json()
        assert body["data"] is None
        assert error_codes(body) == ["GRAPHQL_PARSE_FAILED"]
        assert "GATEWAY_MAX_DOCUMENT_BYTES=2048" in body["errors"][0]["message"]
    batch = httpx.post(url, json=[{"query": "{ __typename }"}, {"query": too_large}]).json()
    assert batch[0] == {"data": {"__typename": "Query"}}
    assert error_codes(batch[1]) == ["GRAPHQL_PARSE_FAILED"]
    assert upstream.count() == 0


def test_the_defaults_let_every_query_of_the_repository_through():
    """GraphiQL's introspection query is ~1.6 KB, the README's examples under 1 KB, the
    bench's 60 look-ups ~8 KB; a test's chain of 1,000 fragments (refused later, for its
    nesting) ~33 KB."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    examples = re.findall(r"```graphql\n(.*?)```", readme, re.DOTALL)
    introspection = get_introspection_query(descriptions=True, input_value_deprecation=True)
    prepared = documents()
    for query in [introspection, *examples, *QUERIES.values(), fragment_chain(1_000)]:
        prepared.document(query)
    assert examples
    assert len(QUERIES["LOOKUPS_60"]) * 5 < MAX_DOCUMENT_BYTES


# --- new documents pay their size -----------------------------------------------------------


def test_a_new_document_costs_a_request_per_started_256_bytes_and_a_known_one_one():
    prepared = documents()
    small, big = "{ __typename }", "{ __typename }" + " " * (3 * COST_BYTES)
    assert prepared.cost(small) == 1
    assert prepared.cost(big) == 4
    prepared.document(big)
    assert prepared.cost(big) == 1  # prepared: costs what any request does
    assert prepared.cost("{ a }" + " " * MAX_DOCUMENT_BYTES) == 1  # refused for free
    assert prepared.cost(None) == 1


def test_a_caller_sending_new_documents_pays_for_their_size(gateway_settings: Settings):
    """Rate 50/s, burst 100: 100 new 8 KB documents a second used to be let through."""
    settings = dataclasses.replace(gateway_settings, rate_limit=0.001, rate_burst=100)
    with serve(create_app(settings)) as url:
        client = GraphQLClient(url)

        def new(tag: str, size: int) -> str:
            return f"{{ {tag}: __typename }}" + " " * (size - 20)

        first = new("a", 40 * COST_BYTES)  # 40 requests' worth
        answers = [client.post(first), client.post(first), client.post(new("b", 64 * COST_BYTES))]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refused = answers[-1].json()
    assert error_codes(refused) == ["RATE_LIMITED"]
    assert f"a request per {COST_BYTES} bytes" in refused["errors"][0]["message"]
    assert answers[-1].headers["Retry-After"]


def test_registering_or_refusing_a_document_still_pays_for_its_size(
    gateway_settings: Settings, tmp_path: Path
):
    """Resolving persisted documents prepares some texts before they run (an APQ
    registration validates its text; persisted-only mode parses a text that may be
    introspection): each is still charged by its size, as if nothing had prepared it."""

    def new(tag: str, size: int) -> str:
        return f"{{ {tag}: __typename }}" + " " * (size - 20)

    def registration(text: str) -> dict[str, Any]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        return {
            "query": text,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
        }

    settings = dataclasses.replace(gateway_settings, rate_limit=0.001, rate_burst=100)
    with serve(create_app(settings)) as url:
        first = registration(new("a", 40 * COST_BYTES))  # 40 requests' worth
        answers = [post_json(url, first), post_json(url, first)]
        answers.append(post_json(url, registration(new("b", 64 * COST_BYTES))))
    assert [answer.status_code for answer in answers] == [200, 200, 429]

    documents = tmp_path / "documents.json"
    documents.write_text(json.dumps({"known": "{ __typename }"}))
    only = dataclasses.replace(settings, persisted_only=True, persisted_documents=str(documents))

    # Names `__type`, so it is parsed to see whether it is introspection: it is not.
    def looks_like_introspection(tag: str) -> str:
        return f"# __type\n{{ {tag}: jobs(first: 1) {{ nodes {{ id }} }} }}" + " " * (
            60 * COST_BYTES
        )

    with serve(create_app(only)) as url:
        refused = [post_json(url, {"query": looks_like_introspection(tag)}) for tag in "cd"]
    assert [answer.status_code for answer in refused] == [400, 429]


def post_json(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=body, timeout=30)


def test_a_document_larger_than_a_burst_still_gets_through_once_the_bucket_is_full(
    gateway_settings: Settings,
):
    settings = dataclasses.replace(gateway_settings, rate_limit=0.001, rate_burst=10)
    with serve(create_app(settings)) as url:
        response = GraphQLClient(url).post("{ __typename }" + " " * 10_000)
    assert response.status_code == 200


# --- the parts that were not linear in the size ---------------------------------------------


def conflicting_fields(count: int) -> str:
    """`count` fields of one response name with different arguments: graphql-core's
    OverlappingFieldsCanBeMerged compares every pair (and explains every conflict)."""
    return "{ " + " ".join(f'job(id: "{n}") {{ id }}' for n in range(count)) + " }"


def test_fields_that_cannot_be_merged_are_refused_in_bounded_time():
    """An 8 KB document of 450 such fields took ~3 s to validate (101 errors)."""
    schema = build_schema()
    started = time.perf_counter()
    result = schema.execute_sync(conflicting_fields(450))
    elapsed = time.perf_counter() - started

    assert result.errors is not None
    assert [error.message for error in result.errors] == ["Validation aborted."]
    assert elapsed < 1.0


def run(
    schema: Any, query: str, metrics: GatewayMetrics, variables: dict[str, Any] | None = None
) -> Any:
    # Two jobs without screening questions: only `JobConnection` and `Job` objects.
    jobs = [{**job, "screening_questions": []} for job in SOURCE_JOBS[:2]]

    async def execute() -> Any:
        return await schema.execute(
            query, variable_values=variables, context_value=context(jobs, metrics)
        )

    return asyncio.run(execute())


def test_the_overlap_budget_leaves_ordinary_repeated_fields_alone():
    document = (
        "query($on: Boolean!) { a: jobs(first: 1) { nodes { id id ...F ...F @include(if: $on) } }"
        " b: jobs(first: 1) { nodes { ...F } } } fragment F on Job { id name status }"
    )
    assert run(build_schema(), document, GatewayMetrics(), {"on": True}).errors is None


def test_a_selection_too_large_to_compile_takes_the_standard_path():
    """250 aliases of a 9-member union compiled 636 KB of Python (~1.4 s) for one query."""
    aliases = " ".join(
        f"q{n}: screeningQuestions {{ format {{ __typename "
        "... on TextQuestionFormat { type displayType maxLength } } }"
        for n in range(250)
    )
    query = f"{{ jobs(first: 2) {{ nodes {{ {aliases} }} }} }}"
    metrics = GatewayMetrics()
    fast = run(build_schema(), query, metrics)
    plain = run(build_schema(fast_path=False), query, GatewayMetrics())

    assert fast.errors is None and fast.data == plain.data
    # The connection (its projection would hold the jobs') and its two jobs.
    assert fallbacks(metrics, "not_compiled") == 3 and fallbacks(metrics, "raised") == 0


def test_past_its_compile_budget_a_schema_serves_new_selections_the_standard_way():
    schema = build_schema()
    budget = _projectors_of(graphql_schema(schema)).budget
    metrics = GatewayMetrics()
    query = "{ jobs(first: 2) { nodes { id name status postUrl } } }"
    plain = run(build_schema(fast_path=False), query, GatewayMetrics())

    budget.spend(budget.burst + 60)  # as if a caller had kept it compiling for a minute
    assert run(schema, query, metrics).data == plain.data
    assert fallbacks(metrics, "not_compiled") == 3  # the connection and its two jobs

    budget.spend(-(budget.burst + 60))  # refilled: the selection compiles, and stays
    assert run(schema, query, metrics).data == plain.data
    budget.spend(budget.burst + 60)
    assert run(schema, query, metrics).data == plain.data
    assert fallbacks(metrics, "not_compiled") == 3


def test_the_compile_budget_refills_at_its_share_of_the_time():
    now = [0.0]
    budget = CompileBudget(share=0.05, burst=1.0, clock=lambda: now[0])
    assert budget.allows()
    budget.spend(1.5)  # one compilation may overdraw it
    assert not budget.allows()
    now[0] = 9.0  # 0.45 s back: still in debt
    assert not budget.allows()
    now[0] = 11.0
    assert budget.allows()
    now[0] = 1_000.0
    budget.allows()
    budget.spend(1.0)
    assert not budget.allows()  # never more than the burst at once


def test_query_limits_carry_the_document_size():
    schema = build_schema(QueryLimits.from_settings(Settings(max_document_bytes=1024)))
    assert schema.documents.max_document_bytes == 1024
    result = schema.execute_sync("{ __typename }" + " " * 1024)
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "GRAPHQL_PARSE_FAILED"}
