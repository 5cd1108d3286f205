"""The compiled fast path: it answers exactly like the standard executor, and the
sandbox's data never leaves it.

Differential test: generated queries (random selections, aliases, inline and named
fragments, `@include`/`@skip` with literals and variables, `__typename`, union members)
run over generated data (sandbox jobs with random damage: missing keys, wrong types,
unknown enum values, nulls in non-null fields, list items that are no objects) through
both `build_schema()` and `build_schema(fast_path=False)` (the gateway's executor with
the same checks of Kombo's data, without compiled projections); `data` and `errors`
must be identical.

Such a test passes as well when the fast path is never taken, so the fast path's own
counter, `gateway_fastpath_fallbacks_total`, must stay at zero while a real gateway
serves every field of every sandbox job over HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
)

from bench.queries import JOB_ALL_FIELDS
from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
from gateway.http.app import create_app
from gateway.observability.metrics import GatewayMetrics
from gateway.sandbox.data import dataset
from gateway.schema.build import build_schema
from gateway.schema.context import Context
from gateway.schema.fastpath.projection import GatewayExecutionContext, ProjectingExecutionContext
from gateway.schema.private_api import graphql_schema
from gateway.upstream.cache import CachedKombo, UpstreamCache
from gateway.upstream.loaders import Loaders
from tests.fake_kombo import FakeKombo
from tests.support import GraphQLClient, serve

CASES = 600
WEIRD_VALUES: list[Any] = [
    None, 0, 7, -1, 2**40, 3.5, True, False, "", "x", "OPEN", "2026-05-18T09:55:30.731Z",
    "2026-13-01", [], {}, [1], {"id": 5},
]  # fmt: skip

FAST = build_schema()
PLAIN = build_schema(fast_path=False)


def test_the_two_paths_differ_only_by_the_compiled_projections():
    assert FAST.execution_context_class is ProjectingExecutionContext
    # gateway/schema/__init__.py: `fast_path=False` must keep the checks of Kombo's data.
    assert PLAIN.execution_context_class is GatewayExecutionContext


def context(jobs: list[dict[str, Any]], metrics: GatewayMetrics | None = None) -> Context:
    fake = FakeKombo({SANDBOX_INTEGRATION_IDS[0]: jobs})
    kombo = CachedKombo(fake, UpstreamCache.disabled(), fingerprint="t")
    return Context(
        kombo=kombo,
        loaders=Loaders(kombo, GatewayMetrics(), max_calls=100),
        integration_id=SANDBOX_INTEGRATION_IDS[0],
        max_ids=1_000,
        metrics=metrics,
    )


SOURCE_JOBS = [
    orjson.loads(record.encoded) for record in dataset()[SANDBOX_INTEGRATION_IDS[0]].jobs
]


def damaged_jobs(rng: random.Random, damage: float) -> list[dict[str, Any]]:
    """A few sandbox jobs, some keys removed or replaced by odd values, nested ones too."""
    jobs = copy.deepcopy(rng.sample(SOURCE_JOBS, rng.randint(1, 6)))

    def harm(record: dict[str, Any]) -> None:
        for key in list(record):
            roll = rng.random()
            if roll < damage / 3:
                del record[key]
            elif roll < damage:
                record[key] = rng.choice(WEIRD_VALUES)
            elif isinstance(record[key], dict):
                harm(record[key])
            elif isinstance(record[key], list):
                items = record[key]
                for index, item in enumerate(items):
                    if rng.random() < damage / 4:
                        items[index] = rng.choice(WEIRD_VALUES)
                    elif isinstance(item, dict):
                        harm(item)

    for job in jobs:
        if rng.random() < 0.6:
            harm(job)
    return jobs


class QueryMaker:
    """Random selections over the schema the client sees."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.fragments: dict[str, str] = {}
        self.variables: dict[str, bool] = {}
        self.schema = graphql_schema(PLAIN)

    def selection(self, type_: Any, depth: int) -> str:
        if isinstance(type_, GraphQLUnionType):
            parts = ["__typename"] if self.rng.random() < 0.5 else []
            for member in self.rng.sample(list(type_.types), self.rng.randint(1, len(type_.types))):
                parts.append(f"... on {member.name} {{ {self.selection(member, depth)} }}")
            return " ".join(parts)
        assert isinstance(type_, GraphQLObjectType)
        names = [name for name, field in type_.fields.items() if not field.args]
        chosen = self.rng.sample(names, self.rng.randint(1, min(len(names), 8)))
        parts = []
        for name in chosen:
            inner = _named(type_.fields[name].type)
            if isinstance(inner, GraphQLObjectType | GraphQLUnionType):
                if depth >= 4:
                    continue
                text = f"{name} {{ {self.selection(inner, depth + 1)} }}"
            else:
                text = name
            parts.append(self.decorate(text, type_))
        if self.rng.random() < 0.3:
            parts.append("__typename")
        return " ".join(parts) or "__typename"

    def decorate(self, text: str, parent: GraphQLObjectType) -> str:
        roll = self.rng.random()
        if roll < 0.15:
            text = f"a{self.rng.randint(0, 99)}: {text}"
        elif roll < 0.25:
            variable = f"v{len(self.variables)}"
            self.variables[variable] = self.rng.random() < 0.5
            directive = self.rng.choice(["include", "skip"])
            text = f"{text} @{directive}(if: ${variable})"
        elif roll < 0.3:
            text = f"{text} @skip(if: {self.rng.choice(['true', 'false'])})"
        elif roll < 0.38:
            text = f"... on {parent.name} {{ {text} }}"
        elif roll < 0.45:
            name = f"F{len(self.fragments)}"
            self.fragments[name] = f"fragment {name} on {parent.name} {{ {text} }}"
            text = f"...{name}"
        return text

    def query(self) -> tuple[str, dict[str, bool]]:
        connection = self.schema.type_map["JobConnection"]
        body = self.selection(connection, 0)
        declared = "".join(f"${name}: Boolean!, " for name in self.variables).rstrip(", ")
        head = f"query Q({declared})" if declared else "query Q"
        first = self.rng.choice([0, 1, 3, 6])
        text = f"{head} {{ jobs(first: {first}) {{ {body} }} }}"
        return " ".join([text, *self.fragments.values()]), self.variables


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


async def run_both(query: str, variables: dict[str, Any], jobs: list[dict[str, Any]]) -> Any:
    fast = await FAST.execute(query, variable_values=variables, context_value=context(jobs))
    plain = await PLAIN.execute(query, variable_values=variables, context_value=context(jobs))
    return fast, plain


@pytest.mark.parametrize("chunk", range(6))
def test_fast_path_matches_graphql_core(chunk: int):
    async def check() -> int:
        compared = 0
        for case in range(chunk * CASES // 6, (chunk + 1) * CASES // 6):
            rng = random.Random(case)
            query, variables = QueryMaker(rng).query()
            jobs = damaged_jobs(rng, damage=rng.choice([0.0, 0.0, 0.02, 0.1]))
            fast, plain = await run_both(query, variables, jobs)
            assert fast.data == plain.data, (case, query)
            assert [e.formatted for e in fast.errors or []] == [
                e.formatted for e in plain.errors or []
            ], (case, query)
            compared += 1
        return compared

    assert asyncio.run(check()) == CASES // 6


def fallbacks(metrics: GatewayMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_fastpath_fallbacks_total", {"reason": reason}
    )
    return value or 0.0


def test_the_cases_reach_the_fast_path_and_its_fallback():
    """Guards the test above: clean data takes the fast path, damage triggers fallbacks."""
    query = "{ jobs(first: 3) { nodes { komboId name stages { name } } } }"
    clean = SOURCE_JOBS[:3]
    broken = copy.deepcopy(clean)
    broken[1]["name"] = 42  # `name` is a String: the standard path reports it

    async def check() -> None:
        metrics = GatewayMetrics()
        fast = await FAST.execute(query, context_value=context(clean, metrics))
        plain = await PLAIN.execute(query, context_value=context(clean))
        assert fast.errors is None and fast.data == plain.data
        assert fallbacks(metrics, "raised") == fallbacks(metrics, "not_compiled") == 0
        fast = await FAST.execute(query, context_value=context(broken, metrics))
        plain = await PLAIN.execute(query, context_value=context(broken))
        assert fast.errors and [e.formatted for e in fast.errors] == [
            e.formatted for e in plain.errors or []
        ]
        assert fast.data == plain.data
        assert fallbacks(metrics, "raised") >= 1

    asyncio.run(check())


def test_a_role_that_is_no_string_is_left_out_and_reported_not_an_internal_error():
    job = copy.deepcopy(SOURCE_JOBS[0])
    job["hiring_team"] = [{"id": "m1", "hiring_team_roles": ["RECRUITER", {"a": 1}, 3, None]}]
    query = "{ jobs(first: 1) { nodes { hiringTeam { hiringTeamRoles hiringTeamRolesRaw } } } }"

    async def check() -> None:
        for result in await run_both(query, {}, [job]):
            member = result.data["jobs"]["nodes"][0]["hiringTeam"][0]
            assert member == {"hiringTeamRoles": ["RECRUITER"], "hiringTeamRolesRaw": ["RECRUITER"]}
            errors = [e.formatted for e in result.errors or []]
            assert [(e["path"][-1], e["extensions"]["code"]) for e in errors] == [
                ("hiringTeamRoles", "UPSTREAM_ERROR"),
                ("hiringTeamRolesRaw", "UPSTREAM_ERROR"),
            ]

    asyncio.run(check())


def test_a_question_completed_on_its_own_still_finds_its_precondition():
    """A job with bad data takes the standard path; its questions, completed by compiled
    code one by one, still resolve `preconditionQuestion` within the job."""
    job = copy.deepcopy(
        next(
            job
            for job in SOURCE_JOBS
            if any(q.get("precondition_question_id") for q in job["screening_questions"])
        )
    )
    job["weekly_hours"] = "forty"
    query = (
        "{ jobs(first: 1) { nodes { weeklyHours screeningQuestions {"
        "  komboId preconditionQuestion { komboId } } } } }"
    )

    async def check() -> None:
        fast, plain = await run_both(query, {}, [job])
        assert fast.data == plain.data
        questions = fast.data["jobs"]["nodes"][0]["screeningQuestions"]
        assert any(question["preconditionQuestion"] for question in questions)

    asyncio.run(check())


# --------------------------------------------------------------------------------------------
# The sandbox's data, served by a real gateway over HTTP, never leaves the fast path
# --------------------------------------------------------------------------------------------

ALL_JOBS = (
    "query All($after: String) {"
    "  jobs(first: 250, after: $after, filter: {includeDeleted: true}) {"
    "    pageInfo { hasNextPage endCursor }"
    "    edges { cursor node { id komboId } }"
    "    nodes {" + JOB_ALL_FIELDS + "    }"
    "  }"
    "}"
)
BY_ID = (
    "query ById($id: ID!, $ids: [ID!]!) {"
    "  job(id: $id) {" + JOB_ALL_FIELDS + "  }"
    "  nodes(ids: $ids) { ... on Job {" + JOB_ALL_FIELDS + "  } }"
    "}"
)


@pytest.fixture(scope="module")
def counted_gateway(sandbox_url: str) -> Iterator[str]:
    """A gateway of its own, so that its fallback counter counts this module's requests."""
    settings = Settings(
        api_key=SANDBOX_API_KEY,
        base_url=f"{sandbox_url}/v1",
        integration_id=SANDBOX_INTEGRATION_IDS[0],
        cache_ttl=0,
        rate_limit=0,
    )
    with serve(create_app(settings)) as url:
        yield url


def served_fallbacks(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    counts = {"not_compiled": 0.0, "raised": 0.0}
    for line in text.splitlines():
        for reason in counts:
            if line.startswith(f'gateway_fastpath_fallbacks_total{{reason="{reason}"}} '):
                counts[reason] = float(line.rsplit(" ", 1)[1])
    return counts


@pytest.mark.parametrize("integration", SANDBOX_INTEGRATION_IDS)
def test_every_field_of_every_sandbox_job_takes_the_fast_path(
    counted_gateway: str, integration: str
):
    gql = GraphQLClient(counted_gateway)
    headers = {"X-Integration-Id": integration}
    before = served_fallbacks(counted_gateway)
    ids: list[str] = []
    after = None
    while True:
        connection = gql.data(ALL_JOBS, {"after": after}, headers)["jobs"]
        ids += [job["komboId"] for job in connection["nodes"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert len(ids) == len(dataset()[integration].jobs)
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        data = gql.data(BY_ID, {"id": chunk[0], "ids": chunk}, headers)
        assert data["job"]["komboId"] == chunk[0]
        assert [job["komboId"] for job in data["nodes"]] == chunk
    assert served_fallbacks(counted_gateway) == before == {"not_compiled": 0, "raised": 0}


def test_the_fallback_counter_counts(counted_gateway: str, faults: Callable[..., None]):
    """Guards the test above: a job the fast path refuses is counted (so the app's
    metrics do reach the executor)."""
    job = copy.deepcopy(SOURCE_JOBS[0])
    job["weekly_hours"] = "forty"
    faults({"status": 200, "body": {"status": "success", "data": {"next": None, "results": [job]}}})
    before = served_fallbacks(counted_gateway)["raised"]
    result = GraphQLClient(counted_gateway).execute(
        "{ jobs(first: 1) { nodes { komboId weeklyHours } } }"
    )
    assert result["data"]["jobs"]["nodes"] == [{"komboId": job["id"], "weeklyHours": None}]
    assert served_fallbacks(counted_gateway)["raised"] > before
