"""Every GraphQL example in README.md and docs/ runs as written against the sandbox.

The examples are what a newcomer pastes into GraphiQL after `make run`, so they are
taken from the Markdown itself: each fenced ```graphql block, and each `curl` command
in a shell block whose JSON body carries a query. Each is sent over real HTTP to the
session's gateway, which serves the sandbox with the default integration `make run`
uses, and must answer with data, no errors, and a job wherever it names one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    ListValueNode,
    OperationDefinitionNode,
    StringValueNode,
    parse,
)

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
from gateway.sandbox.data import dataset
from tests.support import GraphQLClient

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SHELL = {"sh", "bash", "shell", "console"}
#: Root fields that look jobs up by ID: each ID an example names must be a real job.
_BY_ID = {"job", "node", "nodes"}


@dataclass(frozen=True)
class Example:
    """One runnable example: where it is, and the request it makes."""

    where: str
    query: str
    variables: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def document(self) -> DocumentNode:
        return parse(self.query)

    @property
    def operation(self) -> OperationDefinitionNode:
        (operation,) = [
            d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        return operation

    @property
    def integration(self) -> str:
        return self.headers.get("X-Integration-Id", SANDBOX_INTEGRATION_IDS[0])


def _blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, line of the opening fence, body) of each fenced block in `path`."""
    text = path.read_text()
    return [
        (match.group(1).lower(), text.count("\n", 0, match.start()) + 1, match.group(2))
        for match in _FENCE.finditer(text)
    ]


def _curl_example(where: str, command: str) -> Example | None:
    """The request of a `curl ... -d '{"query": ...}'` command; None when it sends no query."""
    words = shlex.split(command)
    headers: dict[str, str] = {}
    body: str | None = None
    urls: list[str] = []
    words_iter = iter(words[1:])
    for word in words_iter:
        if word in ("-H", "--header"):
            name, _, value = next(words_iter).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw", "--data-binary"):
            body = next(words_iter)
        elif word in ("-X", "--request", "-o", "--output"):
            next(words_iter)
        elif not word.startswith("-"):
            urls.append(word)
    if body is None or "query" not in body:
        return None
    (url,) = urls
    assert urlsplit(url).path == "/graphql", f"{where}: curl example posts to {url}"
    payload = json.loads(body)
    return Example(where, payload["query"], payload.get("variables"), headers)


def _examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        name = path.relative_to(ROOT).as_posix()
        for language, line, body in _blocks(path):
            where = f"{name}:{line}"
            if language == "graphql":
                found.append(Example(where, body))
            elif language in _SHELL:
                # One command per logical line: backslash-newline continues it.
                for command in body.replace("\\\n", " ").splitlines():
                    if command.strip().startswith("curl "):
                        example = _curl_example(where, command)
                        if example is not None:
                            found.append(example)
    return found


EXAMPLES = _examples()


def _root_fields(example: Example) -> list[FieldNode]:
    return [s for s in example.operation.selection_set.selections if isinstance(s, FieldNode)]


def _ids_named(example: Example) -> list[str]:
    """The ID literals of the example's by-ID root fields (`id:` and `ids:` arguments)."""
    ids: list[str] = []
    for root in _root_fields(example):
        if root.name.value not in _BY_ID:
            continue
        for argument in root.arguments or ():
            assert isinstance(argument, ArgumentNode)
            value = argument.value
            values = value.values if isinstance(value, ListValueNode) else (value,)
            ids += [v.value for v in values if isinstance(v, StringValueNode)]
    return ids


def _kombo_id(id_: str) -> str:
    """A Kombo ID as it is, or the Kombo ID inside a `Job:` global ID."""
    if re.fullmatch(r"[A-Za-z0-9]{24}", id_):
        return id_
    try:
        type_name, _, kombo_id = base64.b64decode(id_, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        pytest.fail(f"{id_!r} is neither a Kombo ID nor a global ID")
    assert type_name == "Job", id_
    return kombo_id


def _check_answer(example: Example, result: dict[str, Any]) -> None:
    """Data, no errors; every root field answered, with jobs where it promises some."""
    assert "errors" not in result, f"{example.where}: {result['errors']}"
    data = result.get("data")
    assert data, f"{example.where}: no data in {result}"
    for root in _root_fields(example):
        key = root.alias.value if root.alias else root.name.value
        value = data[key]
        assert value is not None, f"{example.where}: `{key}` is null"
        if isinstance(value, list):
            assert value, f"{example.where}: `{key}` is empty"
            assert None not in value, f"{example.where}: `{key}` has a null: {value}"
        if isinstance(value, dict):
            for page in ("edges", "nodes"):
                if page in value:
                    assert value[page], f"{example.where}: `{key}.{page}` is empty"


def test_the_readme_has_examples_of_each_kind():
    readme = [e for e in EXAMPLES if e.where.startswith("README.md:")]
    assert len(readme) >= 4, [e.where for e in readme]
    assert any(e.headers for e in readme), "the README's curl example was not found"
    assert any(_ids_named(e) for e in readme), "the README's by-ID example was not found"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_each_example_is_one_operation(example: Example):
    """Runs as written: one operation, so no `operationName` is needed to pick it."""
    operations = [d for d in example.document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, f"{example.where}: {len(operations)} operations in one block"


def test_the_test_gateway_serves_what_make_run_serves(gateway_settings: Settings):
    """`make run` without a key: the sandbox's key, its first integration by default."""
    assert gateway_settings.api_key == SANDBOX_API_KEY
    assert gateway_settings.integration_id == SANDBOX_INTEGRATION_IDS[0]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_example_runs_against_the_sandbox(gql: GraphQLClient, example: Example):
    response = gql.post(example.query, example.variables, example.headers)
    assert response.status_code == 200, f"{example.where}: {response.text}"
    result = response.json()
    _check_answer(example, result)
    # An example that takes `$after` pages on: its next page must work as well.
    declared = {v.variable.name.value for v in example.operation.variable_definitions or ()}
    if "after" in declared:
        (connection,) = (v for v in result["data"].values() if isinstance(v, dict))
        assert connection["pageInfo"]["hasNextPage"], example.where
        variables = {**(example.variables or {}), "after": connection["pageInfo"]["endCursor"]}
        _check_answer(example, gql.execute(example.query, variables, example.headers))


BY_ID = [e for e in EXAMPLES if _ids_named(e)]


@pytest.mark.parametrize("example", BY_ID, ids=[e.where for e in BY_ID])
def test_by_id_examples_name_real_jobs(example: Example):
    """Each ID is a job of the integration the example asks (the answer is checked above)."""
    jobs = dataset()[example.integration].by_id
    for id_ in _ids_named(example):
        assert _kombo_id(id_) in jobs, f"{example.where}: no job {id_} in {example.integration}"


def test_the_readme_by_id_example_shows_a_deleted_job(gql: GraphQLClient):
    """Its comment says deleted jobs are included: the `job` it looks up is one."""
    (example,) = [e for e in BY_ID if e.where.startswith("README.md:")]
    data = gql.data(example.query, example.variables, example.headers)
    assert data["job"]["remoteDeletedAt"] is not None


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, `-` for spaces."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_links_between_the_docs_resolve(document: Path):
    """Every relative link names a file that exists, and a heading in it when it has `#`."""
    text = _FENCE.sub("", document.read_text())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.is_file(), f"{document.name}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", linked.read_text()), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{document.name}: {target}"
