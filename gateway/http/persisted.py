"""Persisted documents: what text a request runs when it sends an id or a hash instead
(contract section 10).

Usage (by the view, after admission, before the response cache and Strawberry)::

    persisted = PersistedDocuments.from_settings(
        settings, trusted=trusted, store=store, prepared=schema.documents, schema=served
    )
    resolved = await persisted.resolve(operations)   # raises PersistedQueryError, BadUserInput
    resolved.operations                 # each with the text it runs
    resolved.failures[i]                # a batch item that cannot run, and why
    resolved.documents[i]               # what logs and metrics call its document

How one operation is resolved, in this order:

=============================================  ==========================================
request                                        runs
=============================================  ==========================================
`documentId` / `doc_id` (raw id, `sha256:`)    the trusted document; unknown: NOT_FOUND
APQ hash only                                  the trusted document with that hash, else
                                               the registered one (`ApqStore`); unknown:
                                               NOT_FOUND; APQ off: NOT_SUPPORTED
APQ hash and text                              the text, once its SHA-256 is the hash
                                               (else HASH_MISMATCH); registered when it
                                               validates; APQ off: NOT_SUPPORTED
text only                                      the text
=============================================  ==========================================

With `GATEWAY_PERSISTED_ONLY=true` a text must be a trusted document's (its SHA-256 is
looked up, unless it is longer than any trusted document may be: the text is never
parsed), or, while introspection is on, a document that
asks only for the schema (`__schema`, `__type`, `_service`: GraphiQL's and routers'
questions), else the whole request is refused with NOT_IN_LIST; and nothing is
registered or read from the APQ store, so only shipped documents run.

Errors follow Apollo's protocol so that its persisted-queries link works unchanged:
NOT_FOUND and NOT_SUPPORTED answer HTTP 200 with Apollo's messages, and the link then
sends the text (or stops hashing). A single operation's failure is the request's
answer; in a batch, each item that cannot run gets its own error and the others run.
What may not run at all (NOT_IN_LIST, a malformed `persistedQuery`) refuses the batch.

Cost of each path to whoever sends it: an id or a hash is a dict lookup (and one Redis
GET for an unknown hash, with Redis); a text in persisted-only mode (or, with trusted
documents, any text: to name it in metrics) is one SHA-256 of at most
`GATEWAY_MAX_DOCUMENT_BYTES` (a longer one cannot be trusted, and is not hashed); a text
sent with an APQ hash is hashed whole (at most `GATEWAY_MAX_BODY_BYTES`); a registration
validates the text once (cached for its execution; paid for by its size, like any new
document) and stores at most that many bytes, each on the caller's rate limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLError, GraphQLSchema, OperationDefinitionNode

from gateway.config import Settings
from gateway.errors import (
    BadUserInput,
    GatewayError,
    PersistedQueryError,
    PersistedQueryHashMismatch,
    PersistedQueryNotFound,
    PersistedQueryNotInList,
    PersistedQueryNotSupported,
)
from gateway.http.apq_store import ApqStore
from gateway.http.operations import Operation, Operations
from gateway.schema.operation import PreparedDocuments
from gateway.schema.trusted_documents import TrustedDocument, TrustedDocuments, text_sha256

#: What `documents` says of a document registered through APQ: metrics take this label
#: (anyone can register documents: one label each would grow without end); the log line
#: names it by its hash (`apq:<sha256>`).
APQ_LABEL = "apq"
#: Top-level fields a document may select and still count as asking for the schema only.
_SCHEMA_FIELDS = frozenset({"__schema", "__type", "__typename", "_service"})
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request's operations with the texts they run, item by item."""

    operations: Operations
    #: Per item: why it cannot run (a batch's; a single operation's error is raised).
    failures: tuple[PersistedQueryError | None, ...]
    #: Per item: the trusted document's id, `apq:<sha256>`, or None (a text sent as is).
    documents: tuple[str | None, ...]

    @property
    def runnable(self) -> bool:
        """Every item has its text (what the response cache can key)."""
        return not any(self.failures) and all(op.query is not None for op in self.operations.items)


class PersistedDocuments:
    """Resolves requests' persisted documents: trusted ones, and APQ's registered ones."""

    def __init__(
        self,
        *,
        trusted: TrustedDocuments | None,
        store: ApqStore | None,
        only: bool,
        introspection: bool,
        prepared: PreparedDocuments,
        schema: GraphQLSchema,
    ) -> None:
        #: The shipped documents (`GATEWAY_PERSISTED_DOCUMENTS`), if any.
        self.trusted = trusted
        #: Registered APQ documents; None: APQ is off (`GATEWAY_APQ=false`).
        self.store = store
        #: `GATEWAY_PERSISTED_ONLY`.
        self.only = only
        self._introspection = introspection
        self._prepared = prepared
        self._schema = schema

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        trusted: TrustedDocuments | None,
        store: ApqStore,
        prepared: PreparedDocuments,
        schema: GraphQLSchema,
    ) -> PersistedDocuments:
        return cls(
            trusted=trusted,
            store=store if settings.apq else None,
            only=settings.persisted_only,
            introspection=settings.introspection,
            prepared=prepared,
            schema=schema,
        )

    def label(self, document: str | None) -> str | None:
        """The metrics label of a `Resolved.documents` entry (bounded: trusted ids, or
        `APQ_LABEL`)."""
        if document is None:
            return None
        return APQ_LABEL if document.startswith("apq:") else document

    async def resolve(self, operations: Operations) -> Resolved:
        """The texts `operations` run.

        Raises:
            PersistedQueryError: the single operation cannot run (its answer), or an item
                of a batch may not run at all (NOT_IN_LIST).
            BadUserInput: a malformed `persistedQuery`, or an id sent with a text.
        """
        items: list[Operation] = []
        failures: list[PersistedQueryError | None] = []
        documents: list[str | None] = []
        for index, operation in enumerate(operations.items):
            try:
                resolved, document = await self._resolve(operation)
            except PersistedQueryNotInList:
                raise
            except PersistedQueryError as error:
                if not operations.batch:
                    raise
                resolved, document = operation, None
                failures.append(error)
            except BadUserInput as error:
                if not operations.batch:
                    raise
                raise BadUserInput(f"Batch item {index}: {error}") from None
            else:
                failures.append(None)
            items.append(resolved)
            documents.append(document)
        return Resolved(
            Operations(tuple(items), operations.batch), tuple(failures), tuple(documents)
        )

    async def _resolve(self, operation: Operation) -> tuple[Operation, str | None]:
        """One operation with its text, and what its document is called."""
        if operation.document_id is not None:
            return self._by_id(operation)
        sha256 = _apq_hash(operation.extensions)
        if sha256 is not None:
            return await self._by_hash(operation, sha256)
        if operation.query is None or not (self.only or self.trusted):
            return operation, None  # no text (Strawberry says so), or nothing to check
        trusted = self._trusted_text(operation.query)
        if trusted is not None:
            return operation, trusted.id
        if self.only and not self._asks_for_the_schema(operation.query):
            raise _not_in_list()
        return operation, None

    def _trusted_text(self, query: str) -> TrustedDocument | None:
        """The trusted document whose text `query` is, found by its SHA-256; a text longer
        than any document may be (`GATEWAY_MAX_DOCUMENT_BYTES`) is none, unhashed."""
        if self.trusted is None or len(query) > self._prepared.max_document_bytes:
            return None
        return self.trusted.with_sha256(text_sha256(query))

    def _by_id(self, operation: Operation) -> tuple[Operation, str | None]:
        assert operation.document_id is not None
        if operation.query is not None:
            raise BadUserInput(
                "Send either `documentId` (or `doc_id`) or `query`, not both: the id "
                "names the document to run"
            )
        trusted = self.trusted.find(operation.document_id) if self.trusted else None
        if trusted is None:
            raise PersistedQueryNotFound()
        return operation.with_query(trusted.text), trusted.id

    async def _by_hash(self, operation: Operation, sha256: str) -> tuple[Operation, str | None]:
        trusted = self.trusted.with_sha256(sha256) if self.trusted else None
        if operation.query is not None and text_sha256(operation.query) != sha256:
            raise PersistedQueryHashMismatch(
                "provided sha does not match query: `extensions.persistedQuery.sha256Hash` "
                "must be the SHA-256 (hex) of the UTF-8 text of `query`"
            )
        if trusted is not None:
            return operation.with_query(trusted.text), trusted.id
        store = self.store
        if store is None:
            raise PersistedQueryNotSupported()
        if self.only:
            if operation.query is None:
                raise PersistedQueryNotFound()
            raise _not_in_list()
        if operation.query is None:
            text = await store.get(sha256)
            if text is None:
                raise PersistedQueryNotFound()
            return operation.with_query(text), f"apq:{sha256}"
        # Kept only when it would run: a document that does not parse or validate is
        # refused again by its execution, and never fills the store.
        if self._prepared.valid(operation.query, self._schema):
            await store.put(sha256, operation.query)
        return operation, f"apq:{sha256}"

    def _asks_for_the_schema(self, query: str) -> bool:
        """Whether `query` only introspects (allowed in persisted-only mode while
        introspection is on). Parsed, with every limit, only when it can be: it names
        `__schema`, `__type` or `_service`."""
        if not self._introspection or not any(
            name in query for name in ("__schema", "__type", "_service")
        ):
            return False
        try:
            document = self._prepared.document(query)
        except GraphQLError:
            return False
        return _schema_only(document)


def _schema_only(document: DocumentNode) -> bool:
    """Every operation of `document` selects only schema fields at its top level."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(
        all(
            isinstance(selection, FieldNode) and selection.name.value in _SCHEMA_FIELDS
            for selection in operation.selection_set.selections
        )
        for operation in operations
    )


def _apq_hash(extensions: Any) -> str | None:
    """The APQ hash of `extensions.persistedQuery` (lowercase hex), None without one.

    Raises:
        BadUserInput: `persistedQuery` is there but not `{version: 1, sha256Hash: <hex>}`.
    """
    if not isinstance(extensions, dict):
        return None
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise BadUserInput(_MALFORMED)
    version = persisted.get("version")
    if version != 1:
        # Named only when it is a scalar: `str()` of a value nested a thousand deep (JSON
        # allows it) would overflow the stack.
        shown = f" {str(version)[:20]}" if isinstance(version, int | float | str) else ""
        raise BadUserInput(
            f"Unsupported persisted query version{shown}: "
            "send `extensions.persistedQuery.version` 1"
        )
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _HEX_SHA256.fullmatch(sha256):
        raise BadUserInput(_MALFORMED)
    return sha256.lower()


def _not_in_list() -> GatewayError:
    return PersistedQueryNotInList(
        "This gateway runs only its persisted documents (GATEWAY_PERSISTED_ONLY): send "
        "`documentId` (or Relay's `doc_id`, or the APQ hash) of a document your app "
        "shipped, not a document's text"
    )


_MALFORMED = (
    "`extensions.persistedQuery` must be an object like "
    '{"version": 1, "sha256Hash": "<64 hex digits: SHA-256 of the query text>"}'
)
