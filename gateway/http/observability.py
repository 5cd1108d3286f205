"""The ASGI middleware that observes every HTTP request: an id, stats, metrics, a log line.

Usage::

    app = ObservabilityMiddleware(app, metrics=metrics)   # outermost ASGI layer

A request to the GraphQL path ends in exactly one JSON log line and a few metric
updates, built from its `RequestStats`: never from bodies, variables, query text or
headers, so no secret a caller or Kombo sent can reach the logs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.metrics import GatewayMetrics
from gateway.observability.refusals import SUMMARISED_STATUSES, RefusalSummary
from gateway.observability.request_ids import REQUEST_ID_HEADER_KEY, request_id_from
from gateway.observability.request_stats import RequestStats, current_request

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
        stats = RequestStats(request_id=request_id_from(_header(scope, REQUEST_ID_HEADER_KEY)))
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
        self._observe_documents(stats, status, seconds)
        if status in SUMMARISED_STATUSES and not self.refusals.note(
            status=status, address=stats.address
        ):
            return  # in the window's `requests_refused` summary instead
        self.logger.info(
            "graphql request",
            extra=_log_fields(stats, method=method, status=status, seconds=seconds),
        )

    def _observe_documents(self, stats: RequestStats, status: int, seconds: float) -> None:
        """The request's persisted documents, each counted under its label."""
        metrics = self.metrics
        for label in {label for _, label in stats.documents if label is not None}:
            metrics.document_requests.labels(document=label, status=str(status)).inc()
            metrics.document_duration.labels(document=label).observe(seconds)
            for code in stats.error_codes:
                metrics.document_errors.labels(document=label, code=code).inc()


#: The status logged and counted for a request whose client left before its answer
#: (nginx's convention): not a server error, and not a success.
CLIENT_CLOSED_REQUEST = 499


class _Exchange:
    """One request's messages: adds the request id, remembers the status, notices when
    the client leaves."""

    def __init__(self, send: Send, receive: Receive, request_id: str) -> None:
        self._send = send
        self._receive = receive
        self._header = (REQUEST_ID_HEADER_KEY, request_id.encode("latin-1"))
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
                if name.lower() != REQUEST_ID_HEADER_KEY
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
        "documents": [name for name, _ in stats.documents] or None,
        "duration_ms": round(seconds * 1000, 1),
        "upstream_calls": stats.upstream_calls,
        "upstream_errors": stats.upstream_errors,
        "retries": stats.retries,
        "cache_hits": stats.cache_hits,
        "cache_misses": stats.cache_misses,
        "response_cache": stats.response_cache,
        "error_codes": list(stats.error_codes),
        "integration": stats.integration,
        "client": stats.client,
    }
