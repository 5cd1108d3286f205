"""The `/graphql` endpoint: admission (size, caller, rate, integration), then Strawberry.

Every refusal here happens before any upstream call and is a coded JSON error with a
fitting HTTP status: 413 body too large, 401 no or bad token, 429 rate limit (with
`Retry-After`), 403 integration not allowed, 400/405 malformed requests, each saying
what would work. GraphiQL's page (a GET without `query` whose `Accept` lists
`text/html`, i.e. a browser) needs no token: it holds no data, and its header editor is
where people put theirs. Programs (curl's and `fetch`'s `Accept: */*`) get JSON.

After admission, the documents a request names by id or hash are resolved to their
text (`persisted`: trusted documents, APQ), then the request is looked up in the response cache
(`response_cache`, keyed by `response_key`) and, when found, answered from its bytes
without executing; otherwise Strawberry runs it, and an answer without errors is kept.
Every answer then gets its HTTP caching headers (`http_caching`).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.types import ExecutionResult

from gateway.errors import (
    INTERNAL_MESSAGE,
    BadUserInput,
    Code,
    GatewayError,
    PersistedQueryError,
    PersistedQueryNotInList,
    RateLimited,
    Unauthenticated,
)
from gateway.http.access import KOMBO_KEY_HEADER, Caller
from gateway.http.client_address import client_address
from gateway.http.graphiql import graphiql_page
from gateway.http.http_caching import HttpCaching, body_digest, strong_etag
from gateway.http.operations import Operations, is_json, operations_of
from gateway.http.persisted import PersistedDocuments, Resolved
from gateway.http.request_body import read_bounded_body
from gateway.http.request_shape import (
    Shape,
    accept_header,
    accepts_html,
    parse_body,
    query_params,
    reworded,
)
from gateway.http.response_cache import CachedAnswer, ResponseCache, Slot
from gateway.http.response_key import ResponseKey, deployment_digest
from gateway.http.state import GatewayState
from gateway.observability.request_stats import (
    record_error_codes,
    set_address,
    set_client,
    set_documents,
    set_integration,
    set_operation,
)
from gateway.schema.context import INTEGRATION_HEADER, Context, requested_integration
from gateway.schema.operation import COST_BYTES, PreparedDocuments
from gateway.schema.private_api import graphql_schema
from gateway.upstream.budget import CallBudget
from gateway.upstream.cache import CachedKombo, credential_fingerprint
from gateway.upstream.loaders import Loaders

logger = logging.getLogger("gateway.view")

_STATUS_BY_CODE = {
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.RATE_LIMITED: 429,
}


def refusal_status(exc: GatewayError) -> int:
    """The HTTP status of an error that refuses a whole request (/graphql, webhooks)."""
    return exc.http_status or _STATUS_BY_CODE.get(exc.code, 400)


@dataclass(frozen=True, slots=True)
class Admission:
    """What admission decided for one request, handed to `get_context`."""

    caller: Caller
    integration: str | None
    integration_problem: str | None
    #: Digest of the caller's own Kombo key (pass-through mode), computed once.
    key_fingerprint: str | None = None
    #: The rate-limit buckets this request pays into (each operation of a batch pays).
    rate_keys: tuple[str, ...] = ()


@dataclass(slots=True)
class _Answering:
    """What the view learns about one request's answer while Strawberry builds it."""

    #: Some operation's result has an error: the answer is neither kept nor cacheable.
    errors: bool = False
    #: The request's view of Kombo, which knows how old the cached data it used is.
    kombo: CachedKombo | None = None


@dataclass(frozen=True, slots=True)
class _Cacheable:
    """A request the response cache may answer: where its answer is kept, and what it asks."""

    cache: ResponseCache
    slot: Slot
    operations: Operations


class _Unrunnable(GraphQLRequestData):
    """A batch item whose persisted document cannot run: answered with its error."""

    def __init__(self, item: GraphQLRequestData, error: PersistedQueryError) -> None:
        super().__init__(None, item.variables, item.operation_name, item.extensions, item.protocol)
        self.error = error


_PAGE_ONLY = Admission(Caller(name=None), None, "GraphiQL's page resolves no data")
#: The admission of the request being served (the batch check in `parse_http_body`
#: reads it: Strawberry hands that method only its request adapter).
_admission: ContextVar[Admission | None] = ContextVar("gateway_admission", default=None)


@dataclass(slots=True)
class _Reading:
    """What the view read of a request before Strawberry does, for Strawberry's hooks."""

    #: The body (bytes) or query parameters it was parsed from: Strawberry's reading of
    #: the same object reuses `parsed` (`parse_json`, `parse_query_params`).
    source: object
    #: What `request_shape.parse_body` or `query_params` made of it.
    parsed: Any
    #: The operations with their persisted documents resolved: `parse_http_body` hands
    #: their texts to Strawberry.
    resolved: Resolved | None = None
    #: Per operation, what the text it sent costs its caller's rate, taken before
    #: anything prepared it (None: it sent no text, only an id or a hash).
    costs: tuple[int | None, ...] = ()


_reading: ContextVar[_Reading | None] = ContextVar("gateway_reading", default=None)


def wants_fresh_data(cache_control: str | None) -> bool:
    """True for `Cache-Control: no-cache` (or `max-age=0`): skip cached reads, refresh them."""
    if not cache_control:
        return False
    directives = {part.strip().lower() for part in cache_control.split(",")}
    return "no-cache" in directives or "max-age=0" in directives


def error_response(
    message: str, code: Code, status: int, extensions: dict[str, Any] | None = None
) -> Response:
    body = {
        "errors": [{"message": message, "extensions": {"code": str(code), **(extensions or {})}}]
    }
    response = Response(orjson.dumps(body), status_code=status, media_type="application/json")
    HttpCaching.no_store(response)  # an error: no cache may keep it
    if code is Code.RATE_LIMITED and extensions and "retryAfter" in extensions:
        response.headers["Retry-After"] = str(extensions["retryAfter"])
    return response


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with admission, our context, offline GraphiQL and orjson."""

    def __init__(
        self, schema: strawberry.Schema, gateway: GatewayState, persisted: PersistedDocuments
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if gateway.settings.graphiql else None)
        self._gateway = gateway
        self._persisted = persisted
        self._caching = HttpCaching.from_settings(gateway.settings)
        self._deployment = deployment_digest(gateway.settings, schema.as_str())
        served = graphql_schema(schema)
        # Answers are reused only for queries: were a mutation or subscription ever
        # added, repeating one must run it, so the cache stays off until that is decided.
        queries_only = served.mutation_type is None and served.subscription_type is None
        responses = gateway.responses
        self._responses: ResponseCache | None = (
            responses if responses.enabled and queries_only else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            if self._wants_graphiql(request):
                response = await self.run(request)
            else:
                request = await self._with_bounded_body(request)
                admission = request.state.admission = await self._admit(request)
                _admission.set(admission)
                response = await self._answer(request, admission)
        except GatewayError as exc:
            record_error_codes([str(exc.code)])
            status = refusal_status(exc)
            response = error_response(str(exc), exc.code, status, exc.extensions())
        except HTTPException as exc:
            # Request-shape problems (bad JSON, no query, wrong method): still a coded error.
            record_error_codes([str(Code.BAD_USER_INPUT)])
            response = self._request_shape_error(request, exc)
        await response(scope, receive, send)

    async def _answer(self, request: Request, admission: Admission) -> Response:
        """An admitted request's answer: from the response cache, else executed by
        Strawberry (and kept when it may be), with its HTTP caching headers."""
        answering = request.state.answering = _Answering()
        resolved = await self._resolve(request, admission)
        cacheable = await self._cacheable(admission, resolved)
        if cacheable is not None:
            if wants_fresh_data(request.headers.get("cache-control")):
                cacheable.cache.bypassed()
            else:
                found = await cacheable.cache.get(cacheable.slot)
                if found is not None:
                    return await self._from_cache(request, admission, cacheable, found)
        response = await self.run(request)
        if answering.errors or isinstance(response, StreamingResponse):
            if cacheable is not None and answering.errors:
                cacheable.cache.not_kept()
            return HttpCaching.no_store(response)
        if request.method != "GET" and cacheable is None:
            return HttpCaching.no_store(response)  # nothing to keep, no tag to give
        body = bytes(response.body)
        digest = body_digest(body)
        fresh_for = answering.kombo.fresh_for() if answering.kombo is not None else 0.0
        if cacheable is not None:
            await cacheable.cache.put(cacheable.slot, body, digest, ttl=fresh_for)
        return self._caching.answered(request, response, strong_etag(digest), fresh_for=fresh_for)

    async def _resolve(self, request: Request, admission: Admission) -> Resolved | None:
        """The request's operations with the texts they run (`persisted`), for the
        response cache's key and for Strawberry; None for a request Strawberry will
        refuse for its shape (it then says why).

        What each sent text costs the caller's rate is taken first: resolving may
        prepare a text (an APQ registration validates it, persisted-only mode parses one
        that may be introspection), after which it would look prepared, and free.

        Raises:
            PersistedQueryError, BadUserInput: the request cannot run (its answer).
            RateLimited: refused for persisted-only mode, the text it had parsed is paid.
        """
        reading = await self._read(request)
        if reading is None:
            return None
        _reading.set(reading)
        operations = operations_of(reading.parsed)
        documents = self._documents()
        reading.costs = tuple(
            None if op.query is None else documents.cost(op.query) if documents else 1
            for op in operations.items
        )
        try:
            resolved = await self._persisted.resolve(operations)
        except PersistedQueryNotInList:
            costs = reading.costs
            await self._charge(admission, sum(c or 1 for c in costs), len(costs))
            raise
        reading.resolved = resolved
        named = [(name, self._persisted.label(name)) for name in resolved.documents if name]
        if named:
            set_documents(named)
        return resolved

    async def _read(self, request: Request) -> _Reading | None:
        """The request parsed as Strawberry will parse it, once; None for one it will
        refuse for its shape (it then says why, in the same words)."""
        try:
            if request.method == "GET":
                params = request.query_params
                return _Reading(params, query_params(params))
            if request.method == "POST" and is_json(request.headers.get("content-type")):
                body = await request.body()
                return _Reading(body, parse_body(body, self._batch_limit()))
        except HTTPException:
            pass
        return None

    def _documents(self) -> PreparedDocuments | None:
        """The schema's prepared documents (what a document costs to prepare)."""
        documents = getattr(self.schema, "documents", None)
        return documents if isinstance(documents, PreparedDocuments) else None

    async def _cacheable(
        self, admission: Admission, resolved: Resolved | None
    ) -> _Cacheable | None:
        """Where this request's answer is kept, or None when the response cache is off or
        the request is not one it answers (Strawberry then runs it, or says what is wrong).

        Keyed by the texts the operations run, however they were named (`persisted`).
        The integration's generation is read here, before anything executes: an answer
        built while a webhook raises it is kept under the generation it started from,
        which is never looked up again."""
        responses = self._responses
        if responses is None or resolved is None or not resolved.runnable:
            return None
        operations = resolved.operations
        gateway = self._gateway
        integration = admission.integration
        key = ResponseKey(
            operations,
            integration=integration,
            credential=admission.key_fingerprint or gateway.fingerprint,
            caller=admission.caller.name,
            generation=gateway.cache.generation(integration) if integration else 0,
            deployment=self._deployment,
            shared_generation=(
                await gateway.cache.shared_generation(integration) if integration else None
            ),
        )
        try:
            slot = responses.slot(key)
        except TypeError:  # what orjson reads but cannot write (nesting past 254 levels)
            return None
        return _Cacheable(responses, slot, operations)

    async def _from_cache(
        self,
        request: Request,
        admission: Admission,
        cacheable: _Cacheable,
        found: CachedAnswer,
    ) -> Response:
        """A kept answer: charged to the caller's rate like the request it answers (each
        operation of a batch counts), then sent as stored."""
        operations = cacheable.operations.items
        await self._charge(admission, len(operations), len(operations))
        if len(operations) == 1:
            set_operation(operations[0].operation_name)
        response = Response(found.body, media_type="application/json")
        fresh_for = cacheable.cache.fresh_for(found)
        return self._caching.answered(request, response, found.etag, fresh_for=fresh_for)

    def _wants_graphiql(self, request: Request) -> bool:
        """Whether this request gets the IDE page: `should_render_graphql_ide`, the method
        Strawberry itself asks, so admission and Strawberry never disagree on it."""
        return self.graphql_ide is not None and self.should_render_graphql_ide(
            self.request_adapter_class(request)
        )

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """A GET without `query` from a browser: its `Accept` lists `text/html`.

        Strawberry's own rule also serves `*/*` (curl's and `fetch`'s default), which
        handed programs an HTML page where they expect JSON."""
        return (
            request.method == "GET"
            and request.query_params.get("query") is None
            and accepts_html(accept_header(request.headers))
        )

    def _request_shape_error(self, request: Request, exc: HTTPException) -> Response:
        """The coded JSON answer to an `HTTPException`, saying what would work."""
        message, headers = reworded(exc, request, self._shape())
        response = error_response(message, Code.BAD_USER_INPUT, exc.status_code)
        response.headers.update(headers)
        return response

    def _shape(self) -> Shape:
        return Shape(
            graphiql=self.graphql_ide is not None,
            batch_limit=self._batch_limit(),
            uploads=self.multipart_uploads_enabled,
        )

    def _batch_limit(self) -> int:
        """The most operations one request may carry (`GATEWAY_MAX_BATCH`; 1: no batches)."""
        batching = self.schema.config.batching_config
        return batching["max_operations"] if batching else 1

    async def _with_bounded_body(self, request: Request) -> Request:
        """The request with its body read, refused past the size limit without reading on."""
        if request.method != "POST":
            return request
        settings = self._gateway.settings
        body = await read_bounded_body(
            request, limit=settings.max_body_bytes, timeout=settings.body_timeout, what="request"
        )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await request.receive()

        return Request(request.scope, receive=replay)

    async def _admit(self, request: Request) -> Admission:
        """Who is calling, at what rate, for which integration.

        Raises:
            BadUserInput: a credential or integration header is sent twice.
            Unauthenticated, RateLimited, Forbidden: the request goes no further.
        """
        gateway = self._gateway
        headers = request.headers
        _require_single(request, _SINGLE_HEADERS)
        address = client_address(
            request.client,
            headers.getlist("x-forwarded-for"),
            trusted=gateway.settings.trusted_proxies,
        )
        set_address(address)
        caller = await self._authenticate(request, address)
        set_client(caller.name)
        key = caller.kombo_key
        fingerprint = credential_fingerprint(key) if key is not None else None
        rate_keys = _rate_keys(caller, fingerprint, address)
        wait = await gateway.rate_limiter.acquire(*rate_keys)
        if wait is not None:
            raise RateLimited("Too many requests for this caller; slow down", wait)
        try:
            requested = requested_integration(headers.get(INTEGRATION_HEADER))
            integration = gateway.access.integration_for(
                caller, requested, gateway.settings.integration_id
            )
        except BadUserInput as exc:
            return Admission(caller, None, str(exc), fingerprint, rate_keys)
        set_integration(integration)
        return Admission(caller, integration, None, fingerprint, rate_keys)

    async def _authenticate(self, request: Request, address: str) -> Caller:
        """The caller, once its address is known to be within its allowance of failed
        authentications (`GATEWAY_AUTH_FAILURE_LIMIT`), which each failure spends.

        The allowance is checked before the credentials: an address that keeps sending
        bad ones gets a cheap 429 rather than a digest comparison against every token.
        """
        gateway = self._gateway
        headers = request.headers
        if not gateway.access.checks_credentials:
            return gateway.access.authenticate(None)
        bucket = f"addr:{address}"
        wait = await gateway.auth_failures.wait(bucket)
        if wait is not None:
            raise RateLimited(
                "Too many failed authentications from this address (GATEWAY_AUTH_FAILURE_LIMIT)",
                wait,
            )
        try:
            return gateway.access.authenticate(
                headers.get("authorization"), headers.get(KOMBO_KEY_HEADER)
            )
        except Unauthenticated:
            await gateway.auth_failures.acquire(bucket)
            raise

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        """Strawberry's parsing, then what the request owes beyond the one request
        admission took: each operation of a batch pays, and a document the schema has
        not prepared yet pays by its size (`PreparedDocuments.cost`: preparing one costs
        the worker in proportion to its size). Each batch item is checked as a single
        request would be, so a malformed item is a 400 too."""
        data = await super().parse_http_body(request)
        reading = _reading.get()
        if reading is not None and reading.resolved is not None:
            data = _with_documents(data, reading.resolved)
        admission = _admission.get()
        if admission is not None:
            operations = data if isinstance(data, list) else [data]
            costs = reading.costs if reading is not None else ()
            if len(costs) != len(operations):
                costs = (None,) * len(operations)
            documents = self._documents()
            cost = sum(
                sent if sent is not None else documents.cost(op.query) if documents else 1
                for op, sent in zip(operations, costs, strict=True)
            )
            await self._charge(admission, cost, len(operations))
        return data

    async def _charge(self, admission: Admission, cost: int, operations: int) -> None:
        """Make the caller pay `cost` requests in all (admission took one) for a request
        of `operations` operations.

        Raises:
            RateLimited: the caller's bucket cannot pay it now.
        """
        limiter, wait = self._gateway.rate_limiter, None
        if cost > 1:
            # At most a full bucket in all (admission took one), or it could never pay.
            owed = min(cost - 1, limiter.burst - 1)
            if owed > 0:
                wait = await limiter.acquire(*admission.rate_keys, cost=owed)
        if wait is not None:
            raise RateLimited(
                f"Too many requests for this caller: a batch of {operations} "
                "operations counts as that many requests; slow down"
                if cost == operations
                else "Too many requests for this caller: a document the gateway has not "
                f"seen yet counts as a request per {COST_BYTES} bytes, up to a full burst; "
                "slow down",
                wait,
            )

    async def execute_single(
        self,
        request: Any,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, except for a batch item whose persisted document cannot run:
        its answer is its error, and the other items run."""
        if isinstance(request_data, _Unrunnable):
            error = request_data.error
            record_error_codes([str(error.code)])
            return ExecutionResult(
                data=None, errors=[GraphQLError(str(error), extensions=error.extensions())]
            )
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def get_context(self, request: Any, response: Any) -> Context:
        gateway = self._gateway
        # GraphiQL's page skips admission; Strawberry still builds a context before
        # rendering it, which then is never used to resolve anything.
        admission: Admission = getattr(request.state, "admission", _PAGE_ONLY)
        client, fingerprint = gateway.kombo, gateway.fingerprint
        cursor_key = gateway.cursor_key
        if admission.caller.kombo_key is not None and admission.key_fingerprint is not None:
            client = client.with_key(admission.caller.kombo_key)
            fingerprint = admission.key_fingerprint
            cursor_key = gateway.cursor_key_for(admission.caller.kombo_key)
        kombo = CachedKombo(
            client,
            gateway.cache,
            fingerprint=fingerprint,
            refresh=wants_fresh_data(request.headers.get("cache-control")),
            deadline=time.monotonic() + gateway.settings.request_timeout,
            # One context per HTTP request, shared by every operation of a batch: so is
            # the budget.
            budget=CallBudget(gateway.settings.max_upstream_calls),
        )
        answering: _Answering | None = getattr(request.state, "answering", None)
        if answering is not None:
            answering.kombo = kombo
        return Context(
            kombo=kombo,
            loaders=Loaders(kombo, gateway.metrics, max_calls=gateway.settings.isolation_calls),
            integration_id=admission.integration,
            integration_problem=admission.integration_problem,
            max_ids=gateway.settings.max_ids,
            cursor_key=cursor_key,
            metrics=gateway.metrics,
        )

    def parse_json(self, data: str | bytes) -> Any:
        """A request body (`request_shape.parse_body`): orjson instead of json, and only
        an object or a batch of objects within `GATEWAY_MAX_BATCH` reaches Strawberry.
        Parsed once: the view read the same bytes before (`_read`)."""
        reading = _reading.get()
        if reading is not None and reading.source is data:
            return reading.parsed
        return parse_body(data, self._batch_limit())

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """A GET request's operation (`request_shape.query_params`), read once."""
        reading = _reading.get()
        if reading is not None and reading.source is params:
            parsed: dict[str, Any] = reading.parsed
            return parsed
        return query_params(params)

    async def process_result(self, request: Any, result: Any) -> Any:
        """Strawberry's response dict, with a last guarantee: every error has a code.

        Every error path the gateway knows codes its errors earlier; an error that still
        arrives without one is a bug somewhere below, so it is masked and logged.
        """
        response = await super().process_result(request, result)
        errors: list[dict[str, Any]] = list(response.get("errors") or [])  # type: ignore[arg-type]
        answering: _Answering | None = getattr(request.state, "answering", None)
        if errors and answering is not None:
            answering.errors = True
        for error in errors:
            if "code" not in (error.get("extensions") or {}):
                logger.error("uncoded GraphQL error: %s", error.get("message"))
                error["message"] = INTERNAL_MESSAGE
                error["extensions"] = {"code": str(Code.INTERNAL_SERVER_ERROR)}
                record_error_codes([str(Code.INTERNAL_SERVER_ERROR)])
        return response

    async def render_graphql_ide(self, request: Any) -> HTMLResponse:
        # The same URL answers JSON to programs: caches must key on `Accept`.
        return HTMLResponse(
            graphiql_page(graphql_endpoint=str(request.url.path)), headers={"Vary": "Accept"}
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


#: Headers that decide who calls and for what: sent twice, which one counts would depend
#: on the reader (this view reads the first; a proxy in front may have checked the last).
_SINGLE_HEADERS = ("authorization", KOMBO_KEY_HEADER.lower(), INTEGRATION_HEADER.lower())


def _require_single(request: Request, names: tuple[str, ...]) -> None:
    """Raises BadUserInput when one of `names` occurs more than once."""
    for name in names:
        if len(request.headers.getlist(name)) > 1:
            raise BadUserInput(f"Send the `{name}` header once, not several times")


def _with_documents(
    data: GraphQLRequestData | list[GraphQLRequestData], resolved: Resolved
) -> GraphQLRequestData | list[GraphQLRequestData]:
    """Strawberry's reading of the request, each operation given the text it runs (or,
    in a batch, its error). Both read the same body, item for item."""
    items = data if isinstance(data, list) else [data]
    if len(items) != len(resolved.operations.items):
        return data  # not the request resolved (cannot happen): Strawberry's reading
    answered: list[GraphQLRequestData] = []
    for item, operation, failure in zip(
        items, resolved.operations.items, resolved.failures, strict=True
    ):
        if failure is not None:
            answered.append(_Unrunnable(item, failure))
            continue
        item.query = operation.query
        answered.append(item)
    return answered if isinstance(data, list) else answered[0]


def _rate_keys(caller: Caller, key_fingerprint: str | None, address: str) -> tuple[str, ...]:
    """Whose rate a request spends: its token's; else its client address's, and in
    pass-through mode also its Kombo key's (a caller can make up keys, not addresses)."""
    if caller.name is not None:
        return (f"token:{caller.name}",)
    if key_fingerprint is not None:
        return (f"key:{key_fingerprint}", f"addr:{address}")
    return (f"addr:{address}",)
