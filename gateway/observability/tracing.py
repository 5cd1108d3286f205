"""Optional OpenTelemetry tracing of upstream calls.

Usage::

    enable_tracing()                          # once, at start-up, if configured
    with upstream_span(integration, params):  # around one upstream attempt
        ...

OpenTelemetry is an optional dependency, imported lazily: without it the gateway runs
untraced, and `upstream_span` costs one global read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

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
