"""Metrics for every answer Kombo gives, as httpx event hooks on the shared client.

Usage::

    http = httpx.AsyncClient(event_hooks=upstream_hooks(metrics))
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

from gateway.observability.metrics import GatewayMetrics
from gateway.observability.request_stats import count

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
