"""Trusted documents: the operations a frontend shipped, read from its persisted-documents
file and checked against the schema before anything is served (contract section 10).

Usage::

    found = read_documents(Path("persisted-queries.json").read_bytes())  # both formats
    checked = check_documents(found, schema)     # parses and validates each, once
    checked.problems                             # what is wrong, each naming its id
    trusted = checked.trusted()                  # TrustedDocuments; ValueError if problems
    trusted.find("sha256:ab12...")               # by `documentId`, `doc_id` or APQ hash

The two formats (what relay-compiler's `persistConfig` writes, and what Apollo's
`generate-persisted-query-manifest` writes)::

    {"<id>": "<document>", ...}
    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<id>", "body": "<document>", "name": ..., "type": ...}]}

Each document is prepared through the schema's own `PreparedDocuments`, with the rules
and limits every request meets (depth, fields, aliases, tokens, size: they are documents
someone wrote), and kept there for the process's life: a request naming one never
parses or validates it again. A document is also found by the SHA-256 of its text, so a
client sending the text itself, or Apollo's APQ hash of it, is running a trusted
document too. Nothing here knows HTTP: the view decides what a request selects
(`gateway.http.persisted`), and `kombo-gateway documents check` prints `problems` for a
frontend's CI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError

from gateway.config import ConfigError
from gateway.schema.build import GatewaySchema
from gateway.schema.operation import operation_names
from gateway.schema.private_api import graphql_schema

#: `documentId` prefix that selects a document by the SHA-256 of its text
#: (GraphQL-over-HTTP's persisted documents: `sha256:<hex>`).
SHA256_PREFIX = "sha256:"
#: Apollo's manifest marker.
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"
#: Problems listed per file at most: a broken file says enough with the first ones.
MAX_PROBLEMS_LISTED = 50


def text_sha256(text: str) -> str:
    """The hex SHA-256 of a document's UTF-8 text: Apollo's APQ hash, Relay's SHA256 id."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    """One shipped document."""

    #: Its id in the file (Relay's or the manifest's), which requests may send.
    id: str
    text: str
    #: `text_sha256(text)`.
    sha256: str
    #: The names of the operations it defines (anonymous ones as "(anonymous)").
    operations: tuple[str, ...] = ()


class TrustedDocuments:
    """The trusted documents of one file, by id and by the SHA-256 of their text."""

    def __init__(self, documents: Iterable[TrustedDocument], *, source: str = "") -> None:
        self.source = source
        self.by_id: dict[str, TrustedDocument] = {}
        self.by_sha256: dict[str, TrustedDocument] = {}
        for document in documents:
            self.by_id[document.id] = document
            self.by_sha256.setdefault(document.sha256, document)

    def __len__(self) -> int:
        return len(self.by_id)

    def find(self, reference: str) -> TrustedDocument | None:
        """The document a `documentId` or `doc_id` names: its raw id, or
        `sha256:<hex>` (any case) for the SHA-256 of its text."""
        found = self.by_id.get(reference)
        if found is None and reference[: len(SHA256_PREFIX)].lower() == SHA256_PREFIX:
            found = self.by_sha256.get(reference[len(SHA256_PREFIX) :].lower())
        return found

    def with_sha256(self, hex_digest: str) -> TrustedDocument | None:
        """The document whose text has this SHA-256 (an APQ hash, or a text's own)."""
        return self.by_sha256.get(hex_digest.lower())


@dataclass(frozen=True, slots=True)
class FoundDocument:
    """An entry of a documents file, as read (not yet checked against the schema)."""

    id: str
    text: str


@dataclass(slots=True)
class CheckedDocuments:
    """What checking a documents file found: the documents, and what is wrong."""

    format: str
    documents: list[TrustedDocument] = field(default_factory=list)
    #: Each problem names the document's id (or the file's part) it is about.
    problems: list[str] = field(default_factory=list)
    #: Why each refused document is not served, by id (its first problem, without the
    #: id): what `kombo-gateway documents check` prints on that document's line.
    refused: dict[str, str] = field(default_factory=dict)

    def refuse(self, identifier: str, reason: str) -> None:
        """Record a document's problem, in `problems` and under its id in `refused`."""
        self.refused.setdefault(identifier, reason)
        self.problems.append(f"{identifier}: {reason}" if identifier else reason)

    def trusted(self, source: str = "") -> TrustedDocuments:
        """The documents, to serve.

        Raises:
            ValueError: the file has problems (`describe_problems` says which).
        """
        if self.problems:
            raise ValueError(self.describe_problems(source))
        return TrustedDocuments(self.documents, source=source)

    def describe_problems(self, source: str) -> str:
        listed = self.problems[:MAX_PROBLEMS_LISTED]
        more = len(self.problems) - len(listed)
        lines = [f"{source or 'the persisted documents'}: {len(self.problems)} problem(s)"]
        lines += [f"  - {problem}" for problem in listed]
        if more:
            lines.append(f"  ... and {more} more")
        return "\n".join(lines)


class DocumentsFileError(ValueError):
    """The file is not one of the two formats; the message says what was expected."""


def read_documents(data: bytes) -> tuple[str, list[FoundDocument]]:
    """The format's name ("relay" or "apollo") and the entries of a documents file.

    Raises:
        DocumentsFileError: not JSON, or not either format; the message says which part.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DocumentsFileError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise DocumentsFileError(_EXPECTED)
    if "format" in value or "operations" in value:
        return "apollo", _apollo_entries(value)
    entries = []
    for key, text in value.items():
        if not isinstance(text, str):
            raise DocumentsFileError(
                f"entry {key[:100]!r} is not a string: relay-compiler's file maps each "
                "id to a document's text"
            )
        entries.append(FoundDocument(key, text))
    return "relay", entries


def _apollo_entries(manifest: Mapping[str, Any]) -> list[FoundDocument]:
    if manifest.get("format") != APOLLO_MANIFEST_FORMAT or manifest.get("version") != 1:
        raise DocumentsFileError(
            f'an Apollo manifest has "format": "{APOLLO_MANIFEST_FORMAT}" and "version": 1 '
            f"(found {_scalar(manifest.get('format'))!r}, version "
            f"{_scalar(manifest.get('version'))})"
        )
    operations = manifest.get("operations")
    if not isinstance(operations, list):
        raise DocumentsFileError('an Apollo manifest lists its documents in "operations"')
    entries = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise DocumentsFileError(f"operations[{index}] is not an object")
        identifier, body = operation.get("id"), operation.get("body")
        if not isinstance(identifier, str) or not identifier or not isinstance(body, str):
            raise DocumentsFileError(
                f'operations[{index}] needs "id" and "body", both strings (found '
                f"{sorted(operation)[:6]})"
            )
        entries.append(FoundDocument(identifier, body))
    return entries


def load_trusted_documents(path: str, schema: GatewaySchema) -> TrustedDocuments:
    """The trusted documents of `GATEWAY_PERSISTED_DOCUMENTS`, each prepared for good.

    Raises:
        ConfigError: the file cannot be read, is neither format, or a document does not
            validate against the schema; the message names the ids and the problems.
    """
    try:
        data = Path(path).read_bytes()
        format_name, entries = read_documents(data)
    except (OSError, DocumentsFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"GATEWAY_PERSISTED_DOCUMENTS={path}: {reason}") from None
    checked = check_documents(format_name, entries, schema)
    try:
        return checked.trusted(source=path)
    except ValueError as exc:
        raise ConfigError(
            f"GATEWAY_PERSISTED_DOCUMENTS: {exc}\n(`kombo-gateway documents check {path}` "
            "lists them; fix the documents against schema.graphql, or ship a new file)"
        ) from None


def check_documents(
    format_name: str, entries: Iterable[FoundDocument], schema: GatewaySchema
) -> CheckedDocuments:
    """Parse and validate each entry as a request's document would be (the schema's
    rules and limits), keeping each valid one prepared for the process's life."""
    checked = CheckedDocuments(format_name)
    texts: dict[str, str] = {}
    served = graphql_schema(schema)
    for entry in entries:
        if not entry.id:
            checked.refuse(entry.id, "a document has an empty id")
            continue
        seen = texts.get(entry.id)
        if seen is not None:
            if seen != entry.text:
                checked.refuse(entry.id, "listed twice, with different documents")
            continue
        texts[entry.id] = entry.text
        try:
            document = schema.documents.keep(entry.text, served)
        except GraphQLError as error:
            checked.refuse(entry.id, _described(error))
            continue
        operations = tuple(operation_names(document))
        if not operations:
            checked.refuse(entry.id, "defines no operation (only fragments?)")
            continue
        checked.documents.append(
            TrustedDocument(entry.id, entry.text, text_sha256(entry.text), operations)
        )
    return checked


def _scalar(value: object) -> str:
    """A value of the file, shown short; a list or object only by its kind (`str()` of
    one nested a thousand deep would overflow the stack)."""
    if isinstance(value, int | float | str) or value is None:
        return str(value)[:60]
    return type(value).__name__


def _described(error: GraphQLError) -> str:
    """A validation or syntax error, with where it is in the document."""
    where = ""
    if error.locations:
        location = error.locations[0]
        where = f" (line {location.line}, column {location.column})"
    return f"{error.message}{where}"


_EXPECTED = (
    "expected relay-compiler's persisted queries (a JSON object of id to document) or an "
    f'Apollo persisted query manifest ({{"format": "{APOLLO_MANIFEST_FORMAT}", '
    '"version": 1, "operations": [...]})'
)
