"""What a GraphQL-over-HTTP request must look like, and what a client whose request
does not is told: every message says what would work.

Usage (by the view's Strawberry hooks)::

    value = parse_body(body, batch_limit=10)          # raises HTTPException (400)
    operation = query_params(request.query_params)
    message, headers = reworded(exc, request, Shape(graphiql=True, batch_limit=10))
    accepts_html(request.headers.get("accept", ""))   # a browser asking for GraphiQL

Pure functions over bodies, query strings and headers: no admission, no schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from cross_web import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from strawberry.http.types import QueryParams

from gateway.http.observability import GRAPHQL_PATH


@dataclass(frozen=True, slots=True)
class Shape:
    """What this gateway accepts, for messages that say so."""

    #: GraphiQL is served (`GATEWAY_GRAPHIQL`).
    graphiql: bool
    #: Operations one request may carry (`GATEWAY_MAX_BATCH`; 1: no batches).
    batch_limit: int
    #: Multipart file uploads are accepted.
    uploads: bool = False


def parse_body(data: str | bytes, batch_limit: int) -> Any:
    """A request body: orjson instead of json, faster, and it refuses absurd nesting
    with a decode error (a 400) where json.loads overflows the stack (a 500). Only an
    object, or a batch (list) of objects within `GATEWAY_MAX_BATCH`, may reach
    Strawberry; checking the batch size here (Strawberry would too) lets the message
    name the size and the limit."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            400,
            f"The request body is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}): send a JSON object like {_EXAMPLE_BODY}",
        ) from None
    if isinstance(value, list):
        check_batch(value, batch_limit)
        for index, item in enumerate(value):
            check_operation(item, f"Batch item {index}: ")
    elif isinstance(value, dict):
        check_operation(value, "")
    else:
        raise HTTPException(
            400,
            f"The request body is a JSON {_json_kind(value)}; send a JSON object like "
            f"{_EXAMPLE_BODY}" + (" (or a list of them: a batch)" if batch_limit > 1 else ""),
        )
    return value


def check_batch(batch: list[Any], limit: int) -> None:
    """Raises HTTPException unless `batch` is a list of objects this gateway takes."""
    if limit <= 1:
        raise HTTPException(
            400,
            "Batches (a JSON list of operations) are turned off on this gateway "
            "(GATEWAY_MAX_BATCH=1): send one operation per request, as a JSON object",
        )
    if not batch:
        raise HTTPException(
            400, f"The batch is empty: send a list of 1 to {limit} objects like {_EXAMPLE_BODY}"
        )
    if len(batch) > limit:
        raise HTTPException(
            400,
            f"Too many operations: a batch of {len(batch)}, and this gateway takes at most "
            f"{limit} per request (GATEWAY_MAX_BATCH); split it into smaller batches",
        )
    for index, item in enumerate(batch):
        if not isinstance(item, dict):
            raise HTTPException(
                400,
                f"Batch item {index} is a JSON {_json_kind(item)}: every item must be an "
                f"object like {_EXAMPLE_BODY}",
            )


def query_params(params: QueryParams) -> dict[str, Any]:
    """A GET request's operation. `variables` and `extensions` are JSON objects in
    the query string, decoded here rather than by `parse_body` (Strawberry's way),
    which reads request bodies: a batch or a variable named `query` is no concern
    of theirs, and a mistake should name the parameter, not "the body"."""
    data: dict[str, Any] = dict(params)
    for name in ("variables", "extensions"):
        raw = data.get(name)
        if raw is not None:
            data[name] = _query_param_object(name, raw) if raw else None
    return data


def reworded(exc: HTTPException, request: Request, shape: Shape) -> tuple[str, dict[str, str]]:
    """The message for an `HTTPException`, reworded to say what would work, and the
    headers its answer needs.

    Most of these come from Strawberry (`strawberry/http/async_base_view.py`), whose
    wording is matched here; `tests/test_http_surface.py` notices when it changes.
    This module's own ones (`parse_body`, `query_params`) already say it.
    """
    message = exc.reason
    headers: dict[str, str] = {}
    if exc.status_code == 405:  # Strawberry: "GraphQL only supports GET and POST..."
        ide = " (GraphiQL: GET from a browser)" if shape.graphiql else ""
        message = f"{request.method} is not supported on {GRAPHQL_PATH}: {_HOW_TO_QUERY}{ide}"
        headers["Allow"] = "GET, POST"
    elif exc.status_code == 404:  # the IDE page was asked for, and it is turned off
        message = f"GraphiQL is turned off on this gateway (GATEWAY_GRAPHIQL): {_HOW_TO_QUERY}"
        headers["Vary"] = "Accept"
    elif exc.reason == _STRAWBERRY_NO_QUERY:
        message = _no_query_message(request, shape)
        if request.method == "GET":  # a browser's GET gets the page instead
            headers["Vary"] = "Accept"
    elif exc.reason == _STRAWBERRY_BAD_CONTENT_TYPE:
        message = _content_type_message(request, shape)
    elif exc.reason == _STRAWBERRY_NO_OPERATION:
        message = (
            "The document defines no operation to run (only fragments?): add one, "
            "e.g. `query Jobs { jobs(first: 5) { nodes { id name } } }`"
        )
    elif exc.reason.startswith("Unknown operation named"):
        message = (
            f"{exc.reason} Set `operationName` to the name of an operation the document "
            "defines, or leave it out when the document defines one operation"
        )
    elif exc.reason.endswith("are not allowed when using GET"):
        message = (
            f"{exc.reason}: GET runs only queries; send other operations with POST "
            f"{GRAPHQL_PATH} (JSON body)"
        )
    return message, headers


def _no_query_message(request: Request, shape: Shape) -> str:
    if request.method == "POST":
        batch = " (a batch: a list of such objects)" if shape.batch_limit > 1 else ""
        return (
            "The request has no `query`: POST a JSON object like "
            '{"query": "{ jobs(first: 5) { nodes { id name } } }", "variables": {}}'
            f"{batch}"
        )
    ide = (
        "GraphiQL, the in-browser IDE, is served here to browsers (requests whose "
        "Accept header lists text/html)"
        if shape.graphiql
        else "GraphiQL is turned off on this gateway (GATEWAY_GRAPHIQL)"
    )
    return f"A query is required: {_HOW_TO_QUERY}. {ide}"


def _content_type_message(request: Request, shape: Shape) -> str:
    sent = request.headers.get("content-type")
    what = f"Unsupported Content-Type `{sent[:100]}`" if sent else "No Content-Type header"
    uploads = "; file uploads: multipart/form-data" if shape.uploads else ""
    return (
        f"{what}: POST {GRAPHQL_PATH} takes a JSON body sent with "
        f"`Content-Type: application/json`{uploads}; or send a query as "
        f"GET {GRAPHQL_PATH}?query=<URL-encoded document>"
    )


def accepts_html(accept: str) -> bool:
    """Whether an `Accept` header value lists `text/html` with a q-value above 0.

    Only `text/html` itself counts, not `*/*` or `text/*`: a browser navigating sends it
    (`text/html,application/xhtml+xml,...,*/*;q=0.8`), while `*/*` alone is what curl
    and `fetch` send by default, and they want JSON. See RFC 9110, section 12.5.1.
    """
    for media_range in accept.split(","):
        media_type, *parameters = media_range.split(";")
        if media_type.strip().lower() != "text/html":
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # not a q-value: not a clear yes
        if quality > 0:
            return True
    return False


def accept_header(headers: Any) -> str:
    """Every `Accept` line of a request, joined (RFC 9110, section 5.3)."""
    if isinstance(headers, Headers):
        return ", ".join(headers.getlist("accept"))
    return str(headers.get("accept", ""))


#: How to send a query, for messages that say what would work.
_HOW_TO_QUERY = (
    f"send a query as GET {GRAPHQL_PATH}?query=<URL-encoded document>, or as POST "
    f"{GRAPHQL_PATH} with `Content-Type: application/json` and a body like "
    '{"query": "{ jobs(first: 5) { nodes { id name } } }"}'
)
_EXAMPLE_BODY = '{"query": "...", "variables": {...}}'

#: Strawberry's wording of the request-shape errors `_request_shape_error` rewords.
_STRAWBERRY_NO_QUERY = "No GraphQL query found in the request"
_STRAWBERRY_BAD_CONTENT_TYPE = "Unsupported content type"
_STRAWBERRY_NO_OPERATION = "Can't get GraphQL operation type"

#: An example value per JSON query parameter, for its error messages.
_PARAM_EXAMPLES = {"variables": '{"first":5}', "extensions": "{}"}


def _json_kind(value: object) -> str:
    """JSON's name for the type of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _query_param_object(name: str, raw: str) -> dict[str, Any] | None:
    """The JSON object in query parameter `name`.

    Raises:
        HTTPException: not JSON, or JSON but not an object (or null).
    """
    example = _PARAM_EXAMPLES[name]
    hint = f"send a URL-encoded JSON object, e.g. `{name}={quote(example)}` for {example}"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            400,
            f"The `{name}` query parameter is not valid JSON ({exc.msg} at column "
            f"{exc.colno}): {hint}",
        ) from None
    if value is not None and not isinstance(value, dict):
        raise HTTPException(
            400, f"The `{name}` query parameter is a JSON {_json_kind(value)}: {hint}"
        )
    return value


#: The members of one GraphQL-over-HTTP operation that have a type, and that type.
_OPERATION_MEMBERS: tuple[tuple[str, type, str], ...] = (
    ("query", str, "a string"),
    ("operationName", str, "a string"),
    ("variables", dict, "an object"),
    ("extensions", dict, "an object"),
    # A persisted document's id (contract section 10).
    ("documentId", str, "a string"),
    ("doc_id", str, "a string"),
)


def check_operation(operation: dict[str, Any], where: str) -> None:
    """One check for a single operation and for every item of a batch (Strawberry checks
    only single ones), so a malformed item is the same 400 as the same request alone."""
    for name, kind, described in _OPERATION_MEMBERS:
        value = operation.get(name)
        if value is not None and not isinstance(value, kind):
            raise HTTPException(400, f"{where}`{name}` must be {described} or null")
