"""Request ids, per-request stats, JSON logs, request and upstream metrics, optional tracing.

Usage::

    configure_logging("INFO")                                   # once, at start-up
    app = ObservabilityMiddleware(app, metrics=metrics)         # outermost ASGI layer
    http = httpx.AsyncClient(event_hooks=upstream_hooks(metrics))
    count("cache_hits")                      # anywhere; a no-op outside a request
    with upstream_span(integration, params):  # around one upstream attempt
        ...

Every HTTP request gets an id (the caller's `X-Request-Id` when it is safe to echo,
else a fresh one), returned on every response, and a `RequestStats` in the
`current_request` context variable that lower layers add to without knowing whether
anyone observes them. A request to the GraphQL path then ends in exactly one JSON log
line and a few metric updates, built from those stats: never from bodies, variables,
query text or headers, so no secret a caller or Kombo sent can reach the logs.

Low in the import order (after `metrics`): it knows nothing of GraphQL, the schema or
the Kombo client, which call into it. OpenTelemetry is optional and imported lazily.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO, get_args

import httpx
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.metrics import GatewayMetrics
from gateway.observability.refusals import SUMMARISED_STATUSES, RefusalSummary

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

# --- per-request stats ------------------------------------------------------------

#: The counters lower layers may bump with `count`.
Counted = Literal["upstream_calls", "upstream_errors", "retries", "cache_hits", "cache_misses"]
_COUNTED: frozenset[str] = frozenset(get_args(Counted))


@dataclass(slots=True)
class RequestStats:
    """What one request did, gathered as it runs and logged once at its end.

    Shared by reference: tasks a request spawns copy the context variable, not the
    object, so their counts land here too.
    """

    request_id: str
    operation_name: str | None = None
    integration: str | None = None
    #: The name of the access token the caller used (never the token itself).
    client: str | None = None
    #: The client's address (the connection's peer, or a trusted proxy's forward).
    address: str | None = None
    upstream_calls: int = 0
    upstream_errors: int = 0
    retries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    error_codes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


#: The stats of the request being served, or None outside of one (start-up, tests).
current_request: ContextVar[RequestStats | None] = ContextVar("current_request", default=None)


def current_stats() -> RequestStats | None:
    """The current request's stats, or None when no request is being observed."""
    return current_request.get()


def count(field: Counted, n: int = 1) -> None:
    """Add `n` to a counter of the current request; a no-op outside a request.

    An unknown name raises even then, so a typo fails in every test, observed or not.
    """
    if field not in _COUNTED:
        raise ValueError(f"not a request counter: {field!r}")
    stats = current_request.get()
    if stats is not None:
        setattr(stats, field, getattr(stats, field) + n)


def record_error_codes(codes: Iterable[str]) -> None:
    """Remember the contract codes of the errors the current request answers with."""
    stats = current_request.get()
    if stats is not None:
        stats.error_codes.extend(codes)


def set_operation(name: str | None) -> None:
    """Name the GraphQL operation the current request runs (for its log line)."""
    stats = current_request.get()
    if stats is not None:
        stats.operation_name = name


def set_integration(integration: str | None) -> None:
    """Name the Kombo integration the current request uses (for its log line)."""
    stats = current_request.get()
    if stats is not None:
        stats.integration = integration


def set_client(name: str | None) -> None:
    """Name the access token the current request came with (never pass the token)."""
    stats = current_request.get()
    if stats is not None:
        stats.client = name


def set_address(address: str | None) -> None:
    """Name the client address of the current request (for summaries of refusals)."""
    stats = current_request.get()
    if stats is not None:
        stats.address = address


# --- request ids --------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
# Safe in a header, a log line and a URL: nothing that could forge either.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(header_value: str | None) -> str:
    """The caller's request id when it is safe to echo, else a fresh one.

    Callers pass ids to correlate their logs with ours; an id with other characters
    (CR/LF, quotes, spaces) or over 128 characters is replaced, never cleaned up,
    so nothing the caller chose reaches a header or a log unless it is harmless.
    """
    if header_value is not None and _SAFE_REQUEST_ID.fullmatch(header_value):
        return header_value
    return uuid.uuid4().hex


# --- JSON logs -------------------------------------------------------------------

# Attributes every LogRecord has: whatever else a record carries came from `extra`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `logger`, `message`, the record's
    `extra` fields, and `exception` (the formatted traceback) when there is one.

    Log shippers parse it without regexes, and fields stay fields (`status`,
    `duration_ms`) instead of being baked into a sentence. An `extra` field may not
    replace one of the four base fields; values JSON cannot encode are logged as str.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def _utc_timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _JsonHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs; its class is how it finds it again."""


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's records to stderr as JSON lines, at `level`.

    Idempotent: a second call only changes the level, it never adds a second handler
    (which would print every line twice). Other handlers are left alone.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    # httpx logs every upstream call at INFO; the request's own line already counts
    # them (and the metrics time them), so that would be a second line per call.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    if any(isinstance(handler, _JsonHandler) for handler in root.handlers):
        return
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)


# --- the ASGI middleware ------------------------------------------------------------

REQUEST_LOGGER = "gateway.requests"
#: Where the app serves GraphQL (requests there get the GraphQL request counters).
GRAPHQL_PATH = "/graphql"


class ObservabilityMiddleware:
    """Gives every HTTP request an id and stats; logs and measures GraphQL requests.

    Pure ASGI, so it streams: it rewrites only the response's start message (to add
    `X-Request-Id`) and never holds a body. Per request it costs a context variable,
    a header scan and, for the GraphQL path, one log line and a few metric updates.
    Put it outermost, so that even an error answer carries the request id.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: GatewayMetrics,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logging.getLogger(REQUEST_LOGGER)
        self.refusals = RefusalSummary(self.logger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stats = RequestStats(request_id=request_id_from(_header(scope, _REQUEST_ID_HEADER_KEY)))
        token = current_request.set(stats)
        exchange = _Exchange(send, receive, stats.request_id)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            if exchange.client_gone or isinstance(exc, ClientDisconnect):
                # The client left (e.g. while sending its body): nobody to answer, and
                # not our failure. Counted as 499 below, without a traceback.
                exchange.client_gone = True
                return
            # Without this, the server's own 500 would go out without the request id.
            await exchange.send_error_if_unanswered()
            raise
        finally:
            current_request.reset(token)
            if scope["path"] == GRAPHQL_PATH:
                self._observe(stats, scope["method"], exchange.final_status())

    def _observe(self, stats: RequestStats, method: str, status: int) -> None:
        """Record the finished GraphQL request: metrics, then its one log line (refusals
        after the first of a window: a line per window, `gateway.observability.refusals`)."""
        seconds = time.monotonic() - stats.started
        self.metrics.graphql_requests.labels(status=str(status)).inc()
        self.metrics.graphql_request_duration.observe(seconds)
        for code in stats.error_codes:
            self.metrics.graphql_errors.labels(code=code).inc()
        if status in SUMMARISED_STATUSES and not self.refusals.note(
            status=status, address=stats.address
        ):
            return  # in the window's `requests_refused` summary instead
        self.logger.info(
            "graphql request",
            extra=_log_fields(stats, method=method, status=status, seconds=seconds),
        )


#: The status logged and counted for a request whose client left before its answer
#: (nginx's convention): not a server error, and not a success.
CLIENT_CLOSED_REQUEST = 499


class _Exchange:
    """One request's messages: adds the request id, remembers the status, notices when
    the client leaves."""

    def __init__(self, send: Send, receive: Receive, request_id: str) -> None:
        self._send = send
        self._receive = receive
        self._header = (_REQUEST_ID_HEADER_KEY, request_id.encode("latin-1"))
        self.status: int | None = None
        #: The server told us the client disconnected.
        self.client_gone = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.client_gone = True
        return message

    def final_status(self) -> int:
        """What the request is logged and counted as: 499 when the client left before
        the answer was complete, else the answer's status (500 if none went out)."""
        if self.client_gone and not self._complete:
            return CLIENT_CLOSED_REQUEST
        return self.status or 500

    _complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._complete = True
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            headers = [
                (name, value)
                for name, value in message.get("headers", ())
                if name.lower() != _REQUEST_ID_HEADER_KEY
            ]
            headers.append(self._header)
            message = {**message, "headers": headers}
        await self._send(message)

    async def send_error_if_unanswered(self) -> None:
        if self.status is not None:
            return
        await self.send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await self.send({"type": "http.response.body", "body": b"Internal Server Error"})


def _header(scope: Scope, key: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name.lower() == key:
            return str(value.decode("latin-1"))
    return None


def _log_fields(stats: RequestStats, *, method: str, status: int, seconds: float) -> dict[str, Any]:
    """The log line's fields: counts and names only, nothing the caller sent as data."""
    return {
        "event": "graphql_request",
        "request_id": stats.request_id,
        "method": method,
        "status": status,
        "operation": stats.operation_name,
        "duration_ms": round(seconds * 1000, 1),
        "upstream_calls": stats.upstream_calls,
        "upstream_errors": stats.upstream_errors,
        "retries": stats.retries,
        "cache_hits": stats.cache_hits,
        "cache_misses": stats.cache_misses,
        "error_codes": list(stats.error_codes),
        "integration": stats.integration,
        "client": stats.client,
    }


# --- upstream instrumentation -------------------------------------------------------

_STARTED_EXTENSION = "gateway.started"

HttpxHook = Callable[..., Awaitable[None]]


def upstream_hooks(metrics: GatewayMetrics) -> dict[str, list[HttpxHook]]:
    """httpx event hooks for the shared Kombo client: `AsyncClient(event_hooks=...)`.

    Every answer Kombo gives (each retry, each redirect hop) counts in
    `kombo_upstream_requests_total{status}`, its time to response headers in
    `kombo_upstream_request_duration_seconds`, and on the current request's
    `upstream_calls` (plus `upstream_errors` for 4xx/5xx). A call that gets no answer
    (timeout, refused connection) reaches no response hook; retries count those.
    """

    async def on_request(request: httpx.Request) -> None:
        request.extensions[_STARTED_EXTENSION] = time.monotonic()

    async def on_response(response: httpx.Response) -> None:
        status = response.status_code
        metrics.upstream_requests.labels(status=str(status)).inc()
        started = response.request.extensions.get(_STARTED_EXTENSION)
        if isinstance(started, float):
            metrics.upstream_request_duration.observe(time.monotonic() - started)
        count("upstream_calls")
        if status >= 400:
            count("upstream_errors")

    return {"request": [on_request], "response": [on_response]}


# --- optional OpenTelemetry tracing ---------------------------------------------------

UPSTREAM_SPAN_NAME = "kombo GET /ats/jobs"
_TRACER_NAME = "gateway.kombo"
# None: tracing is off, and `upstream_span` costs one global read.
_tracer: Tracer | None = None


def enable_tracing(provider: TracerProvider | None = None) -> bool:
    """Trace upstream calls with `provider` (None: OpenTelemetry's global provider).

    Returns False, leaving tracing off, when `opentelemetry` is not installed: it is an
    optional dependency, so the gateway runs (untraced) without it.
    """
    global _tracer
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    _tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=provider)
    return True


def disable_tracing() -> None:
    """Turn tracing off again (tests, or a reconfiguration)."""
    global _tracer
    _tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


def upstream_span(
    integration: str, params: Mapping[str, str]
) -> contextlib.AbstractContextManager[None]:
    """A span around one upstream attempt when tracing is on, else a no-op.

    Its attributes are the integration, the method, the page size and the number of
    ids asked for: never the key, a cursor, a filter value or an id itself.
    """
    tracer = _tracer
    if tracer is None:
        return contextlib.nullcontext()
    return _traced(tracer, _span_attributes(integration, params))


def _span_attributes(integration: str, params: Mapping[str, str]) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "kombo.integration": integration,
        "http.request.method": "GET",
    }
    page_size = params.get("page_size")
    if page_size is not None and page_size.isdecimal():
        attributes["kombo.page_size"] = int(page_size)
    ids = params.get("ids")
    if ids is not None:
        attributes["kombo.ids_count"] = sum(1 for item in ids.split(",") if item)
    return attributes


@contextlib.contextmanager
def _traced(tracer: Tracer, attributes: dict[str, str | int]) -> Iterator[None]:
    """The span; a failure marks it as an error by exception type only (its message
    may quote what Kombo said, which stays out of traces as it stays out of logs)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with tracer.start_as_current_span(
        UPSTREAM_SPAN_NAME,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
