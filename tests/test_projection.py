"""Differential test: the compiled fast path answers exactly like plain graphql-core.

Generated queries (random selections, aliases, inline and named fragments, `@include`/
`@skip` with literals and variables, `__typename`, union members) run over generated
data (sandbox jobs with random damage: missing keys, wrong types, unknown enum values,
nulls in non-null fields) through both `build_schema()` and
`build_schema(fast_path=False)`; `data` and `errors` must be identical.
"""

from __future__ import annotations

import asyncio
import copy
import random
from typing import Any

import orjson
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
)

from gateway.cache import CachedKombo, UpstreamCache
from gateway.config import SANDBOX_INTEGRATION_IDS
from gateway.context import Context
from gateway.loaders import Loaders
from gateway.metrics import GatewayMetrics
from gateway.sandbox.data import dataset
from gateway.schema import build_schema

CASES = 600
WEIRD_VALUES: list[Any] = [None, 0, 7, -1, 2**40, 3.5, True, False, "", "x", "OPEN", [], {}, [1]]

FAST = build_schema()
PLAIN = build_schema(fast_path=False)


class MemoryKombo:
    """Answers every page request with the same in-memory jobs."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs

    async def get_jobs_page(
        self, integration_id: str, params: dict[str, str], **_: object
    ) -> dict[str, Any]:
        return {"next": None, "results": self.jobs, "byte_size": 1}


def context(jobs: list[dict[str, Any]]) -> Context:
    kombo = CachedKombo(MemoryKombo(jobs), UpstreamCache(0), fingerprint="t")  # type: ignore[arg-type]
    return Context(
        kombo=kombo,
        loaders=Loaders(kombo, GatewayMetrics()),
        integration_id=SANDBOX_INTEGRATION_IDS[0],
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
                for item in record[key]:
                    if isinstance(item, dict):
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
        self.schema = PLAIN._schema

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


def test_the_cases_reach_the_fast_path_and_its_fallback():
    """Guards the test above: clean data takes the fast path, damage triggers fallbacks."""
    query = "{ jobs(first: 3) { nodes { komboId name stages { name } } } }"
    clean = SOURCE_JOBS[:3]
    broken = copy.deepcopy(clean)
    del broken[1]["id"]  # komboId is non-null: graphql-core reports it

    async def check() -> None:
        fast, plain = await run_both(query, {}, clean)
        assert fast.errors is None and fast.data == plain.data
        fast, plain = await run_both(query, {}, broken)
        assert fast.errors and [e.formatted for e in fast.errors] == [
            e.formatted for e in plain.errors or []
        ]

    asyncio.run(check())


def test_a_role_that_is_no_string_is_left_out_not_an_internal_error():
    job = copy.deepcopy(SOURCE_JOBS[0])
    job["hiring_team"] = [{"id": "m1", "hiring_team_roles": ["RECRUITER", {"a": 1}, 3, None]}]
    query = "{ jobs(first: 1) { nodes { hiringTeam { hiringTeamRoles hiringTeamRolesRaw } } } }"

    async def check() -> None:
        for result in await run_both(query, {}, [job]):
            assert result.errors is None
            member = result.data["jobs"]["nodes"][0]["hiringTeam"][0]
            assert member == {"hiringTeamRoles": ["RECRUITER"], "hiringTeamRolesRaw": ["RECRUITER"]}

    asyncio.run(check())
