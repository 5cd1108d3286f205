"""Reading only what a query selects: `schema.selection`, `kombo.parse_jobs_page(keys=)`.

With the cache off, a `jobs` page is decoded keeping only the job keys the selection
reads. These tests prove that is invisible: every Job field, queried alone over real
HTTP, answers exactly what a gateway decoding whole pages answers; the keys a selection
reads are right through fragments, aliases and directives; and a page of unusual shape
is read in full, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from graphql import FieldNode, OperationDefinitionNode, parse, print_ast

from bench.queries import JOB_ALL_FIELDS
from gateway.config import SANDBOX_INTEGRATION_IDS, Settings
from gateway.http.app import create_app
from gateway.observability.metrics import GatewayMetrics
from gateway.schema.build import build_schema
from gateway.schema.context import Context
from gateway.schema.private_api import graphql_schema
from gateway.upstream.cache import CachedKombo, UpstreamCache
from gateway.upstream.kombo import parse_jobs_page
from gateway.upstream.loaders import Loaders
from tests.fake_kombo import FakeKombo
from tests.support import GraphQLClient, serve


def job_field_selections() -> dict[str, str]:
    """Each top-level selection of the benchmark's every-field Job selection, printed."""
    document = parse("{ jobs { nodes {" + JOB_ALL_FIELDS + "} } }")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    jobs = operation.selection_set.selections[0]
    assert isinstance(jobs, FieldNode) and jobs.selection_set
    nodes = jobs.selection_set.selections[0]
    assert isinstance(nodes, FieldNode) and nodes.selection_set
    return {
        selection.name.value: print_ast(selection)
        for selection in nodes.selection_set.selections
        if isinstance(selection, FieldNode)
    }


SELECTIONS = job_field_selections()


@pytest.fixture(scope="module")
def whole_pages_gql(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    """A gateway that keeps pages in its cache, so it decodes every page whole."""
    settings = dataclasses.replace(gateway_settings, cache_ttl=60.0)
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


def test_the_selections_cover_every_field_of_job():
    schema = build_schema()
    job = graphql_schema(schema).get_type("Job")
    assert set(SELECTIONS) == set(job.fields) | {"__typename"}  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_each_job_field_alone_answers_as_from_whole_pages(
    name: str, gql: GraphQLClient, whole_pages_gql: GraphQLClient
):
    query = (
        "query Q($after: String) { jobs(first: 250, after: $after, "
        "filter: {includeDeleted: true}) { pageInfo { hasNextPage endCursor } "
        "nodes { " + SELECTIONS[name] + " } } }"
    )
    for integration in SANDBOX_INTEGRATION_IDS:
        after = None
        while True:
            headers = {"X-Integration-Id": integration}
            variables = {"after": after}
            pruned = gql.execute(query, variables, headers=headers)
            whole = whole_pages_gql.execute(query, variables, headers=headers)
            assert "errors" not in pruned
            assert pruned == whole
            page_info = pruned["data"]["jobs"]["pageInfo"]
            if not page_info["hasNextPage"]:
                break
            after = page_info["endCursor"]


SCHEMA = build_schema()


async def keys_read(query: str) -> tuple[frozenset[str] | None, Any]:
    client = FakeKombo({SANDBOX_INTEGRATION_IDS[0]: [{"id": "j1", "name": "A"}]})
    kombo = CachedKombo(client, UpstreamCache.disabled(), fingerprint="t")
    context = Context(
        kombo=kombo,
        loaders=Loaders(kombo, GatewayMetrics(), max_calls=100),
        integration_id=SANDBOX_INTEGRATION_IDS[0],
        max_ids=1_000,
    )
    result = await SCHEMA.execute(query, context_value=context)
    assert not result.errors, result.errors
    (call,) = client.calls
    return call.keys, result.data


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("{ jobs { nodes { name status } } }", {"name", "status"}),
        ("{ jobs { nodes { n: name again: name } } }", {"name"}),
        ("{ jobs { nodes { id komboId __typename } } }", {"id"}),
        ("{ jobs { pageInfo { hasNextPage } } }", set()),
        ("{ jobs { edges { cursor node { postUrl } } } }", {"post_url"}),
        ("{ jobs { edges { node { name } } nodes { jobCode } } }", {"name", "job_code"}),
        ("{ jobs { nodes { employmentType employmentTypeRaw } } }", {"employment_type"}),
        ("{ jobs { nodes { location { city } stages { name } } } }", {"location", "stages"}),
        (
            "{ jobs { nodes { screeningQuestions { preconditionQuestion { title } } } } }",
            {"screening_questions"},
        ),
        (
            "fragment F on Job { jobCode } { jobs { nodes { "
            "...F ... on Job { department } ... @include(if: false) { category } } } }",
            {"job_code", "department", "category"},
        ),
        ("{ jobs { nodes { name description @skip(if: true) } } }", {"name", "description"}),
        (
            "fragment C on JobConnection { nodes { name } edges { node { ...J } } } "
            "fragment J on Job { weeklyHours } { jobs { ...C } }",
            {"name", "weekly_hours"},
        ),
    ],
)
async def test_the_keys_a_selection_reads(query: str, keys: set[str]):
    read, _ = await keys_read(query)
    assert read == frozenset(keys)


async def test_the_answer_is_remembered_per_document_and_differs_between_documents():
    assert (await keys_read("{ jobs { nodes { name } } }"))[0] == {"name"}
    assert (await keys_read("{ jobs { nodes { name } } }"))[0] == {"name"}
    assert (await keys_read("{ jobs { nodes { status } } }"))[0] == {"status"}


PAGE = orjson.dumps(
    {
        "status": "success",
        "data": {
            "next": "c2",
            "results": [
                {"id": "j1", "name": "A", "status": "OPEN", "stages": [{"id": "s", "name": "x"}]},
                {"id": "j2", "name": None, "extra": {"deep": [1, 2.5, "\u00e9"]}},
            ],
        },
    }
)


def test_a_pruned_page_keeps_exactly_the_keys_asked_and_the_id():
    whole = parse_jobs_page(PAGE)
    pruned = parse_jobs_page(PAGE, frozenset({"name", "stages", "missing"}))
    assert pruned == {
        "next": "c2",
        "results": [
            {"id": "j1", "name": "A", "stages": [{"id": "s", "name": "x"}]},
            {"id": "j2", "name": None},
        ],
        "byte_size": len(PAGE),
    }
    assert whole["results"][1]["extra"] == {"deep": [1, 2.5, "\u00e9"]}


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"results": [1, {"id": "j", "name": "A", "other": 2}], "next": null}}',
        b'{"data": {"results": [{"id": 7, "name": "A"}], "next": null}}',
        b'{"data": {"results": [{"name": "no id"}], "next": null}}',
        b'{"data": {"results": [], "next": 5}}',
        b'{"data": {"results": {"id": "j"}, "next": null}}',
    ],
)
def test_a_page_not_of_kombos_shape_is_refused_alike_pruned_or_not(body: bytes):
    """A job that is no object or has no string `id` is never served (it would be served
    with an ID it does not have): the page is not Kombo's shape."""
    for keys in (None, frozenset({"name"})):
        with pytest.raises(ValueError):
            parse_jobs_page(body, keys)


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"results": [{"id": "j7", "name": 7, "x": 1}, {"id": "j8"}]}}',
        b'{"data": {"results": [], "next": ""}}',
    ],
)
def test_odd_values_are_kept_as_sent(body: bytes):
    pruned = parse_jobs_page(body, frozenset({"name"}))
    whole = parse_jobs_page(body)
    assert pruned["results"] == [
        {k: v for k, v in job.items() if k in {"id", "name"}} for job in whole["results"]
    ]
    assert pruned["next"] == whole["next"] is None


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>", b"[]", b'{"data": []}', b'{"data": {"next": null}}', b'{"nope": 1}'],
)
def test_a_body_that_is_no_page_fails_alike_pruned_or_not(body: bytes):
    for keys in (None, frozenset({"name"})):
        with pytest.raises(ValueError):
            parse_jobs_page(body, keys)
