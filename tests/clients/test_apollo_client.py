"""Apollo Client 4's automatic persisted queries against the gateway, as a browser app
would use them: `PersistedQueryLink` over `HttpLink`, hashed queries over GET (and over
POST, the link's default).

`js/apollo-apq.mjs` runs two clients (caches and links of their own) asking the same
query of a fresh gateway process, and prints every HTTP request they sent with the
gateway's answer. APQ needs no setting: it is on by default.

Needs Node.js and the npm packages of `tests/clients/js` (installed by `make test`).
Without Node the tests are skipped with that reason; with Node but no packages they fail.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import JS, NODE, require_packages
from tests.support import gateway_process

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed on this machine")


def run_clients(gateway_url: str, *, use_get: bool) -> dict[str, Any]:
    require_packages("@apollo/client", "graphql", "rxjs")
    done = subprocess.run(
        [str(NODE), "apollo-apq.mjs"],
        cwd=JS,
        env={
            "GATEWAY_URL": f"{gateway_url}/graphql",
            "APQ_USE_GET": "true" if use_get else "false",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert done.returncode == 0, f"apollo-apq.mjs failed:\n{done.stdout}\n{done.stderr}"
    printed: dict[str, Any] = json.loads(done.stdout)
    return printed


def persisted_query(request: dict[str, Any]) -> dict[str, Any]:
    """The `extensions.persistedQuery` the client sent (GET: a JSON query parameter)."""
    if request["method"] == "GET":
        extensions = json.loads(request["params"]["extensions"])
    else:
        extensions = request["body"]["extensions"]
    found: dict[str, Any] = extensions["persistedQuery"]
    return found


@pytest.mark.parametrize("use_get", [True, False], ids=["GET", "POST"])
def test_a_hash_is_registered_once_then_answered_without_the_document(
    use_get: bool, kombo_env: dict[str, str], tmp_path: Path
):
    with gateway_process(tmp_path, env=kombo_env) as gateway:
        printed = run_clients(gateway.url, use_get=use_get)
    requests, results = printed["requests"], printed["results"]
    shapes = [(r["client"], r["method"], r["sentQuery"], r.get("status")) for r in requests]
    method = "GET" if use_get else "POST"
    assert shapes == [
        ("first", method, False, 200),  # the hash alone: unknown
        ("first", "POST", True, 200),  # the link's retry, with the document: registered
        ("second", method, False, 200),  # another client, the hash alone: answered
    ], json.dumps(requests, indent=2)
    first, registration, second = requests

    # Every request names the same hash, version 1; the registration's document hashes to it.
    sha256 = persisted_query(first)["sha256Hash"]
    assert re.fullmatch(r"[0-9a-f]{64}", sha256)
    for request in requests:
        assert persisted_query(request) == {"version": 1, "sha256Hash": sha256}
    document = registration["body"]["query"]
    assert hashlib.sha256(document.encode()).hexdigest() == sha256
    if use_get:
        assert set(first["params"]) == {"operationName", "variables", "extensions"}
        assert json.loads(first["params"]["variables"]) == registration["body"]["variables"]
    else:
        assert "query" not in first["body"]

    # The answer the link retries on (it matches the message or the code), with no data.
    errors = first["answer"]["errors"]
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
        ("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
    ]
    assert first["answer"].get("data") is None
    assert registration["errorCodes"] == [] and second["errorCodes"] == []
    data = registration["answer"]["data"]
    assert second["answer"]["data"] == data

    # What the app's code got: the same open jobs, from both clients.
    assert [result["error"] for result in results] == [None, None]
    assert results[0]["data"] == results[1]["data"] == data
    jobs = data["jobs"]["nodes"]
    assert len(jobs) == 3
    assert all(job["name"] and job["status"] == "OPEN" for job in jobs)
    assert all(job["__typename"] == "Job" for job in jobs)  # Apollo's cache adds it
