"""A Relay app's persisted queries, as relay-compiler writes them, are the gateway's
trusted documents: each runs by `doc_id`, and nothing else runs.

`relay-app/` is a small Relay frontend (compiled, never run). Each test run copies it into
a temp directory, points its `relay.config.json` at the repo's `schema.graphql` and runs
`relay-compiler` there: nothing it generates lands in the repo. A gateway process then
starts with that file as `GATEWAY_PERSISTED_DOCUMENTS` and `GATEWAY_PERSISTED_ONLY=true`.

Needs Node.js and the npm packages of `tests/clients/js` (installed by `make test`).
Without Node the tests are skipped with that reason; with Node but no packages they fail.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import JS, NODE, require_packages
from tests.support import GatewayProcess, Upstream, gateway_process

APP = Path(__file__).resolve().parent / "relay-app"
ROOT = APP.parent.parent.parent
COMPILER = JS / "node_modules" / ".bin" / "relay-compiler"

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed on this machine")

#: Every operation the app has, generated ones included (`@refetchable` adds the last two).
#: A new operation needs a line here and its variables in `test_every_operation_...`.
OPERATIONS = {
    "JobListQuery",
    "JobsPageQuery",
    "JobDetailQuery",
    "CompareJobsQuery",
    "JobsPagePaginationQuery",
    "JobDetailRefetchQuery",
}


@dataclass
class Compiled:
    """What relay-compiler wrote: the persisted-queries file and its operations by name."""

    file: Path
    documents: dict[str, str]  # id -> document text, as in the file
    ids: dict[str, str]  # operation name -> id
    generated: Path  # the `__generated__` directory (the app's artifacts)

    def text(self, name: str) -> str:
        return self.documents[self.ids[name]]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    require_packages("relay-compiler")
    app = tmp_path_factory.mktemp("relay") / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__generated__", "persisted-*.json"))
    config = json.loads((app / "relay.config.json").read_text())
    config["schema"] = str(ROOT / "schema.graphql")
    (app / "relay.config.json").write_text(json.dumps(config, indent=2))
    persisted = app / config["persistConfig"]["file"]
    # relay-compiler refuses a local persist file that does not exist yet; it adds to it.
    persisted.write_text("{}")
    done = subprocess.run(
        [str(NODE), str(COMPILER)],  # not through its `#!/usr/bin/env node` line
        cwd=app,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"relay-compiler failed:\n{done.stdout}\n{done.stderr}"
    documents: dict[str, str] = json.loads(persisted.read_text())
    ids: dict[str, str] = {}
    for doc_id, text in documents.items():
        match = re.match(r"\s*query\s+(\w+)", text)
        assert match, f"not a named query: {text[:200]}"
        ids[match.group(1)] = doc_id
    return Compiled(persisted, documents, ids, app / "src" / "__generated__")


@pytest.fixture(scope="module")
def gateway(
    compiled: Compiled, kombo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {
        **kombo_env,
        "GATEWAY_PERSISTED_DOCUMENTS": str(compiled.file),
        "GATEWAY_PERSISTED_ONLY": "true",
    }
    with gateway_process(tmp_path_factory.mktemp("gateway"), env=env) as running:
        yield running


def by_doc_id(gateway: GatewayProcess, doc_id: str, variables: dict[str, Any]) -> dict[str, Any]:
    """What Relay's network layer sends for a persisted operation: `doc_id` and variables."""
    response = httpx.post(
        f"{gateway.url}/graphql", json={"doc_id": doc_id, "variables": variables}, timeout=30
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert "errors" not in result, result["errors"]
    data: dict[str, Any] = result["data"]
    return data


def test_relay_compiler_persists_each_operation_under_the_sha256_of_its_text(
    compiled: Compiled,
):
    assert set(compiled.ids) == OPERATIONS
    for doc_id, text in compiled.documents.items():
        assert doc_id == hashlib.sha256(text.encode()).hexdigest()
    # The artifacts the app would bundle carry the id and no text.
    for name, doc_id in compiled.ids.items():
        artifact = (compiled.generated / f"{name}.graphql.js").read_text()
        assert f'"id": "{doc_id}"' in artifact
        assert '"text": null' in artifact
    # Relay's own additions, which the gateway must accept like any field.
    page = compiled.text("JobsPagePaginationQuery")
    assert "after: $cursor" in page
    for added in ("cursor", "__typename", "endCursor", "hasNextPage"):
        assert re.search(rf"\b{added}\b", page), added


def test_every_operation_runs_by_doc_id_and_returns_the_jobs(
    compiled: Compiled, gateway: GatewayProcess
):
    ran: set[str] = set()

    def run(name: str, variables: dict[str, Any]) -> dict[str, Any]:
        ran.add(name)
        return by_doc_id(gateway, compiled.ids[name], variables)

    # The list, with its variables' defaults (first: 10, no filter).
    jobs = run("JobListQuery", {})["jobs"]
    listed = jobs["nodes"]
    assert len(listed) == 10
    assert jobs["pageInfo"]["hasNextPage"] is True
    assert all(job["name"] and job["komboId"] and job["status"] for job in listed)
    ids = [job["id"] for job in listed]
    assert len(set(ids)) == 10

    # The connection's first page, then the next one from its end cursor (`loadNext`).
    first = run("JobsPageQuery", {})["jobs"]
    assert [edge["node"]["id"] for edge in first["edges"]] == ids[:5]
    assert all(edge["cursor"] and edge["node"]["__typename"] == "Job" for edge in first["edges"])
    assert first["pageInfo"]["hasNextPage"] is True
    cursor = first["pageInfo"]["endCursor"]
    assert cursor == first["edges"][-1]["cursor"]
    second = run("JobsPagePaginationQuery", {"count": 5, "cursor": cursor})["jobs"]
    assert [edge["node"]["id"] for edge in second["edges"]] == ids[5:10]
    assert all(edge["node"]["name"] for edge in second["edges"])

    # A job page, and its refetch through `node(id:)`.
    job = run("JobDetailQuery", {"id": ids[0]})["job"]
    assert job["id"] == ids[0]
    assert job["name"] == listed[0]["name"]
    assert isinstance(job["stages"], list) and isinstance(job["hiringTeam"], list)
    refetched = run("JobDetailRefetchQuery", {"id": ids[0]})["node"]
    assert refetched["__typename"] == "Job"
    assert {k: refetched[k] for k in job if k != "name"} == {k: job[k] for k in job if k != "name"}

    # Several jobs by global ID, in order.
    compared = run("CompareJobsQuery", {"ids": ids[2::-1]})["nodes"]
    assert [node["id"] for node in compared] == ids[2::-1]
    assert [node["name"] for node in compared] == [job["name"] for job in listed[2::-1]]

    assert ran == set(compiled.ids)


def test_a_persisted_operation_runs_by_every_id_form_and_over_get(
    compiled: Compiled, gateway: GatewayProcess
):
    doc_id = compiled.ids["JobListQuery"]
    variables = {"first": 3}
    expected = by_doc_id(gateway, doc_id, variables)
    url = f"{gateway.url}/graphql"
    for body in ({"documentId": doc_id}, {"documentId": f"sha256:{doc_id}"}):
        response = httpx.post(url, json={**body, "variables": variables}, timeout=30)
        assert response.status_code == 200, (body, response.text)
        assert response.json() == {"data": expected}
    response = httpx.get(
        url, params={"doc_id": doc_id, "variables": json.dumps(variables)}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": expected}


def test_a_document_not_in_the_file_is_refused_before_any_upstream_call(
    compiled: Compiled, gateway: GatewayProcess, sandbox_url: str
):
    upstream = Upstream(sandbox_url)
    text = compiled.text("JobListQuery")
    # The app's own list, with one field more: a document the app never shipped.
    altered = text.replace("komboId\n", "komboId\n      remoteId\n", 1)
    assert altered != text
    upstream.reset()
    for body in ({"query": altered}, {"query": "{ jobs(first: 1) { nodes { id } } }"}):
        response = httpx.post(f"{gateway.url}/graphql", json=body, timeout=30)
        assert response.status_code == 400, response.text
        codes = [error["extensions"]["code"] for error in response.json()["errors"]]
        assert codes == ["PERSISTED_QUERY_NOT_IN_LIST"]
    response = httpx.post(
        f"{gateway.url}/graphql", json={"doc_id": "0" * 64, "variables": {}}, timeout=30
    )
    assert response.status_code < 500, response.text
    assert response.json()["errors"] and not response.json().get("data"), response.text
    assert upstream.count() == 0
