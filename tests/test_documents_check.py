"""`kombo-gateway documents check FILE [--json]` for a frontend's CI, and `serve`
refusing a persisted-documents file with a bad document in one clean message.

Every command runs as a real subprocess (`python -m gateway ...`) with no Kombo or
gateway settings but those a test gives, as a CI job would run it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.http.serving import free_port
from gateway.schema.build import build_schema
from gateway.schema.trusted_documents import FoundDocument, check_documents

#: Depth 4 (jobs, edges, node, name): fine by default, too deep with GATEWAY_MAX_DEPTH=2.
JOBS = "query Jobs { jobs(first: 3) { edges { node { id name } } } }"
JOB_NAMES = "query JobNames($first: Int = 2) { jobs(first: $first) { nodes { name } } }"
TWO_OPERATIONS = "query First { __typename } query Second { jobs(first: 1) { nodes { id } } }"
UNKNOWN_FIELD = "query Broken { jobs(first: 1) { nodes { nope } } }"
UNKNOWN_FIELD_PROBLEM = (
    "Cannot query field 'nope' on type 'Job'. Did you mean 'name'? (line 1, column 41)"
)


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any KOMBO_/GATEWAY_ setting, plus `settings`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("KOMBO_", "GATEWAY_"))}
    return {**inherited, **settings}


def check(*arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "documents", "check", *arguments],
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def relay_file(directory: Path, documents: dict[str, str]) -> str:
    path = directory / "persisted-queries.json"
    path.write_text(json.dumps(documents))
    return str(path)


def apollo_manifest(directory: Path, operations: list[dict[str, Any]]) -> str:
    path = directory / "persisted-query-manifest.json"
    manifest = {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
    path.write_text(json.dumps(manifest))
    return str(path)


def listing(stdout: str) -> dict[str, list[str]]:
    """The document lines of the text output, by id: [operations, verdict]."""
    lines = stdout.splitlines()[1:-1]
    rows = [line.split(maxsplit=2) for line in lines]
    assert all(line.startswith("  ") for line in lines), stdout
    return {row[0]: row[1:] for row in rows}


def test_a_relay_file_whose_documents_are_all_fine_exits_0_and_lists_them(tmp_path: Path):
    path = relay_file(tmp_path, {"jobs-1": JOBS, "names-2": JOB_NAMES})
    result = check(path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "format: relay (relay-compiler's persisted queries)"
    assert listing(result.stdout) == {"jobs-1": ["Jobs", "OK"], "names-2": ["JobNames", "OK"]}
    assert lines[-1] == "2 documents, 0 problems"
    assert result.stderr == ""


def test_an_apollo_manifest_whose_documents_are_all_fine_exits_0_and_lists_them(
    tmp_path: Path,
):
    path = apollo_manifest(
        tmp_path,
        [
            {"id": "a" * 64, "body": JOBS, "name": "Jobs", "type": "query"},
            {"id": "b" * 64, "body": TWO_OPERATIONS, "name": "First", "type": "query"},
        ],
    )
    result = check(path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "format: apollo (Apollo persisted query manifest)"
    assert lines[1] == f"  {'a' * 64}  Jobs           OK"
    assert lines[2] == f"  {'b' * 64}  First, Second  OK"
    assert lines[-1] == "2 documents, 0 problems"


def test_an_invalid_document_exits_1_naming_its_id_and_why_and_the_rest_still_listed(
    tmp_path: Path,
):
    path = relay_file(tmp_path, {"jobs-1": JOBS, "broken-2": UNKNOWN_FIELD, "names-3": JOB_NAMES})
    result = check(path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = listing(result.stdout)
    assert list(rows) == ["jobs-1", "broken-2", "names-3"]  # the file's order
    assert rows["jobs-1"] == ["Jobs", "OK"]
    assert rows["names-3"] == ["JobNames", "OK"]
    operations, verdict = rows["broken-2"]
    assert operations == "-"
    assert verdict == f"problem: {UNKNOWN_FIELD_PROBLEM}"
    assert result.stdout.splitlines()[-1] == "3 documents, 1 problem"


def test_each_id_is_listed_once_with_the_problem_of_a_repeat_or_an_empty_id(tmp_path: Path):
    path = apollo_manifest(
        tmp_path,
        [
            {"id": "twice", "body": JOBS},
            {"id": "names", "body": JOB_NAMES},
            {"id": "twice", "body": JOB_NAMES},
            {"id": "fragments", "body": "fragment F on Query { __typename }"},
        ],
    )
    result = check(path)
    assert result.returncode == 1
    rows = listing(result.stdout)
    # Its first document is fine (its operations shown); the id is still a problem.
    assert rows["twice"] == ["Jobs", "problem: listed twice, with different documents"]
    assert rows["names"] == ["JobNames", "OK"]
    assert rows["fragments"][1].startswith("problem: Fragment 'F' is never used")
    assert result.stdout.splitlines()[-1] == "3 documents, 2 problems"
    empty = check(relay_file(tmp_path, {"": JOBS, "names": JOB_NAMES}))
    assert empty.returncode == 1
    assert listing(empty.stdout) == {
        '""': ["-", "problem: a document has an empty id"],
        "names": ["JobNames", "OK"],
    }


def test_the_limits_come_from_the_environment_like_in_production(tmp_path: Path):
    path = relay_file(tmp_path, {"deep": JOBS})
    assert check(path).returncode == 0  # the default depth limit lets it through
    result = check(path, GATEWAY_MAX_DEPTH="2")
    assert result.returncode == 1
    assert listing(result.stdout)["deep"] == [
        "-",
        "problem: `Jobs` exceeds the maximum depth of 2 (GATEWAY_MAX_DEPTH)",
    ]


def test_an_invalid_setting_exits_2_naming_it(tmp_path: Path):
    result = check(relay_file(tmp_path, {"jobs": JOBS}), GATEWAY_MAX_DEPTH="deep")
    assert result.returncode == 2
    assert result.stderr.startswith("kombo-gateway: GATEWAY_MAX_DEPTH='deep'"), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file or directory"),
        (b"query { jobs }", "not valid JSON"),
        (b'["query { __typename }"]', "expected relay-compiler's persisted queries"),
        (b'{"a": {"body": "query { __typename }"}}', "entry 'a' is not a string"),
        (b'{"format": "apollo", "version": 1, "operations": []}', "found 'apollo'"),
        (b'{"format": "apollo-persisted-query-manifest", "version": 1}', '"operations"'),
    ],
    ids=["missing", "not-json", "a-list", "relay-not-string", "apollo-format", "no-operations"],
)
def test_a_file_that_cannot_be_read_or_is_neither_format_exits_2(
    tmp_path: Path, content: bytes | None, reason: str
):
    path = tmp_path / "documents.json"
    if content is not None:
        path.write_bytes(content)
    for arguments in [(str(path),), (str(path), "--json")]:
        result = check(*arguments)
        assert result.returncode == 2, result.stdout
        assert result.stderr.startswith(f"kombo-gateway: {path}: "), result.stderr
        assert reason in result.stderr
        if content is not None:
            assert "expected relay-compiler's persisted queries" in result.stderr
        assert result.stdout == ""


def test_json_output_lists_the_served_documents_and_the_problems(tmp_path: Path):
    path = relay_file(tmp_path, {"jobs-1": JOBS, "broken-2": UNKNOWN_FIELD, "two": TWO_OPERATIONS})
    result = check(path, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report == {
        "file": path,
        "format": "relay",
        "documents": [
            {
                "id": "jobs-1",
                "operations": ["Jobs"],
                "sha256": hashlib.sha256(JOBS.encode()).hexdigest(),
            },
            {
                "id": "two",
                "operations": ["First", "Second"],
                "sha256": hashlib.sha256(TWO_OPERATIONS.encode()).hexdigest(),
            },
        ],
        "problems": [
            f"broken-2: {UNKNOWN_FIELD_PROBLEM}",
        ],
    }
    fine = check(relay_file(tmp_path, {"jobs-1": JOBS}), "--json")
    assert fine.returncode == 0
    assert json.loads(fine.stdout)["problems"] == []


def test_check_documents_keeps_each_refused_documents_reason_by_id():
    checked = check_documents(
        "apollo",
        [
            FoundDocument("ok", JOBS),
            FoundDocument("broken", UNKNOWN_FIELD),
            FoundDocument("", JOBS),
            FoundDocument("ok", JOB_NAMES),
        ],
        build_schema(),
    )
    assert checked.refused == {
        "broken": UNKNOWN_FIELD_PROBLEM,
        "": "a document has an empty id",
        "ok": "listed twice, with different documents",
    }
    assert checked.problems == [
        f"broken: {UNKNOWN_FIELD_PROBLEM}",
        "a document has an empty id",
        "ok: listed twice, with different documents",
    ]


def test_serve_refuses_a_file_with_an_invalid_document_in_one_message(tmp_path: Path):
    """Before any worker or the sandbox starts: exit 2, the bad id on stderr, no traceback."""
    path = relay_file(tmp_path, {"jobs-1": JOBS, "broken-2": UNKNOWN_FIELD})
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--port", str(free_port())],
        env=clean_env(GATEWAY_PERSISTED_DOCUMENTS=path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"kombo-gateway: GATEWAY_PERSISTED_DOCUMENTS: {path}: 1 ")
    assert f"  - broken-2: {UNKNOWN_FIELD_PROBLEM}\n" in result.stderr
    assert "jobs-1" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing started: no sandbox, no GraphiQL URL
