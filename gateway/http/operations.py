"""What a GraphQL-over-HTTP request asks, read once, as Strawberry will read it.

Usage (by the view, after admission, on what `request_shape` parsed)::

    operations = operations_of(parse_body(body, batch_limit))  # or of query_params(params)
    operations.items[0].query         # the document's text; None when it names a
    operations.items[0].document_id   # persisted document instead (`documentId`/`doc_id`)

Read by persisted documents (`gateway.http.persisted`, which fills in the text a
request names by id or hash) and by the response cache's key (`response_key`, over the
resolved text). The view parses a request once: Strawberry's own reading of the same
bytes reuses what it parsed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a request, as its answer depends on it."""

    #: The document's text: as sent, or (once resolved) the persisted document's.
    query: str | None
    operation_name: str | None
    #: `variables` and `extensions` as Strawberry reads them (decoded JSON: formatting
    #: and GET's URL encoding do not count; the order of their keys does).
    variables: Any
    extensions: Any
    #: A persisted document's id: GraphQL-over-HTTP's `documentId`, or Relay's `doc_id`.
    document_id: str | None = None

    def with_query(self, query: str) -> Operation:
        return dataclasses.replace(self, query=query)


@dataclass(frozen=True, slots=True)
class Operations:
    """What a request asks: its operations, and whether they came as a batch (a list)."""

    items: tuple[Operation, ...]
    batch: bool


def is_json(content_type: str | None) -> bool:
    """Whether a POST body is one Strawberry reads as JSON (its test, `parse_content_type`:
    the main type, case-sensitive)."""
    return "application/json" in (content_type or "").partition(";")[0]


def operations_of(data: Any) -> Operations:
    """The operations of a request as `request_shape.parse_body` (a POST's JSON object or
    batch) or `request_shape.query_params` (a GET's) read it, so each member has its type."""
    items = data if isinstance(data, list) else [data]
    operations = tuple(
        Operation(
            item.get("query"),
            item.get("operationName"),
            item.get("variables"),
            item.get("extensions"),
            item.get("documentId") or item.get("doc_id"),
        )
        for item in items
    )
    return Operations(operations, batch=isinstance(data, list))
