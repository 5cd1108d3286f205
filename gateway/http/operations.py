"""What a GraphQL-over-HTTP request asks, read once, as Strawberry will read it.

Usage (by the view, after admission)::

    operations = post_operations(content_type, body, batch_limit)  # or get_operations(params)
    operations.items[0].query         # the document's text; None when it names a
    operations.items[0].document_id   # persisted document instead (`documentId`/`doc_id`)

Read by persisted documents (`gateway.http.persisted`, which fills in the text a
request names by id or hash) and by the response cache's key (`response_key`, over the
resolved text). None for a request Strawberry will refuse: it then says why, in its
own words (`request_shape.reworded`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cross_web import HTTPException

from gateway.http.request_shape import parse_body


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


def get_operations(params: Mapping[str, str]) -> Operations | None:
    """The operation of a GET request, read as Strawberry will read it; None for one it
    will refuse (it then says why)."""
    try:
        return _from_params(params)
    except orjson.JSONDecodeError:
        return None


def post_operations(content_type: str | None, body: bytes, batch_limit: int) -> Operations | None:
    """The operations of a POST request, read as Strawberry will read them; None for one
    it will refuse (it then says why) or does not read as JSON."""
    # Strawberry's test (`parse_content_type`, case-sensitive): its main type only.
    if "application/json" not in (content_type or "").partition(";")[0]:
        return None
    try:
        return _from_body(parse_body(body, batch_limit))
    except HTTPException:
        return None


def _from_params(params: Mapping[str, str]) -> Operations | None:
    variables = _json_object(params.get("variables"))
    extensions = _json_object(params.get("extensions"))
    if variables is _REFUSED or extensions is _REFUSED:
        return None
    operation = Operation(
        params.get("query"),
        params.get("operationName"),
        variables,
        extensions,
        params.get("documentId") or params.get("doc_id"),
    )
    return Operations((operation,), batch=False)


#: A query parameter Strawberry refuses (not a JSON object).
_REFUSED: Any = object()


def _json_object(raw: str | None) -> Any:
    """A JSON object parameter as Strawberry reads it (None when absent or empty), or
    `_REFUSED`."""
    if not raw:
        return None
    value = orjson.loads(raw)
    return value if value is None or isinstance(value, dict) else _REFUSED


def _from_body(data: Any) -> Operations:
    """The operations of a body `parse_body` accepted (so each member has its type)."""
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
