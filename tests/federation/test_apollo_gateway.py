"""A real Apollo Gateway composes our subgraph with another one, and batches through us.

Needs Node.js and the npm packages of `tests/federation/js` (installed by `make test`).
Without Node the tests are skipped with that reason; with Node but no packages they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Upstream

JS = Path(__file__).resolve().parent / "js"
ROOT = JS.parent.parent.parent
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed on this machine")


def score(kombo_id: str) -> int:
    """The reviews subgraph's deterministic score (see router.mjs)."""
    return sum(ord(c) for c in kombo_id) % 5 + 1


@pytest.fixture(scope="module")
def router(gateway_url: str) -> Iterator[str]:
    assert (JS / "node_modules" / "@apollo" / "gateway").is_dir(), (
        "npm packages missing: run `make test` (it installs tests/federation/js)"
    )
    process = subprocess.Popen(
        [str(NODE), "router.mjs"],
        cwd=JS,
        env={"JOBS_URL": f"{gateway_url}/graphql", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise AssertionError(
                f"router did not start: {process.stderr and process.stderr.read()}"
            )
        yield json.loads(line)["routerUrl"]
    finally:
        process.kill()
        process.communicate(timeout=10)  # also closes the pipes


def ask(router: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(router, json={"query": query, "variables": variables or {}}, timeout=60)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert "errors" not in result, result["errors"]
    data: dict[str, Any] = result["data"]
    return data


def test_a_query_from_the_other_subgraph_resolves_jobs_in_one_batched_call(
    router: str, gql: Any, upstream: Upstream
):
    direct = gql.data("{ jobs(first: 120) { nodes { komboId name status } } }")["jobs"]["nodes"]
    kombo_ids = [job["komboId"] for job in direct]
    upstream.reset()
    data = ask(
        router,
        """query($ids: [String!]!) { reviewsOf(komboIds: $ids) {
            nodes { text job { komboId name status reviewScore } } pageInfo { hasNextPage } } }""",
        {"ids": kombo_ids},
    )
    jobs = [node["job"] for node in data["reviewsOf"]["nodes"]]
    assert [job["komboId"] for job in jobs] == kombo_ids
    assert [{k: job[k] for k in ("komboId", "name", "status")} for job in jobs] == direct
    assert [job["reviewScore"] for job in jobs] == [score(k) for k in kombo_ids]
    calls = upstream.requests()
    assert len(calls) == 1
    assert calls[0]["params"]["ids"].split(",") == kombo_ids


def test_a_query_from_our_subgraph_is_extended_by_the_other(router: str, upstream: Upstream):
    data = ask(
        router,
        "{ jobs(first: 5) { nodes { id komboId name reviewScore } pageInfo { hasNextPage } } }",
    )
    nodes = data["jobs"]["nodes"]
    assert len(nodes) == 5
    assert [node["reviewScore"] for node in nodes] == [score(node["komboId"]) for node in nodes]
    assert data["jobs"]["pageInfo"]["hasNextPage"] is True
    assert upstream.count() == 1


def test_graphql_js_builds_the_published_schema():
    printed = subprocess.run(
        [str(NODE), "check-sdl.mjs", str(ROOT / "schema.graphql")],
        cwd=JS,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = json.loads(printed)
    for expected in ("Job", "JobConnection", "JobFilter", "ScreeningQuestionFormat", "DateTime"):
        assert expected in names
