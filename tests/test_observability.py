"""Request ids, per-request stats, the GraphQL log line, metrics, upstream hooks and spans."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.http.observability import REQUEST_LOGGER, ObservabilityMiddleware
from gateway.observability import tracing
from gateway.observability.logs import JsonFormatter, configure_logging
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.request_ids import REQUEST_ID_HEADER, request_id_from
from gateway.observability.request_stats import (
    RequestStats,
    count,
    current_request,
    current_stats,
    record_error_codes,
    set_client,
    set_documents,
    set_integration,
    set_operation,
)
from gateway.observability.tracing import disable_tracing, enable_tracing, upstream_span
from gateway.upstream.instrumentation import upstream_hooks
from tests.support import serve
from tests.test_architecture import GATEWAY, imports_of

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SECRET_KEY = "ks_live_SECRET_KEY_0000"
SECRET_VARIABLE = "s3cret-variable-value"
SECRET_QUERY = 'query Secret { jobs(filter: {nameContains: "hidden-text"}) { id } }'
LOG_FIELDS = {
    "ts", "level", "logger", "message", "event", "request_id", "method", "status", "operation",
    "duration_ms", "upstream_calls", "upstream_errors", "retries", "cache_hits", "cache_misses",
    "response_cache", "error_codes", "integration", "client", "documents",
}  # fmt: skip

Endpoint = Callable[[Request], Awaitable[Response]]


class JsonLines(logging.Handler):
    """Keeps each record as `JsonFormatter` writes it: what a log shipper would read."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def log() -> Iterator[JsonLines]:
    logger = logging.getLogger(REQUEST_LOGGER)
    handler, level = JsonLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def own_request_id(request: Request) -> Response:
    return PlainTextResponse("ok", headers={REQUEST_ID_HEADER: "set-by-the-app"})


def wrapped(metrics: GatewayMetrics, graphql: Endpoint = ok) -> ObservabilityMiddleware:
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "PUT"]),
            Route("/ok", ok),
            Route("/boom", boom),
            Route("/own-id", own_request_id),
        ]
    )
    return ObservabilityMiddleware(app, metrics=metrics)


@contextlib.asynccontextmanager
async def client_for(
    app: Any, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


# --- request ids ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "req-1.2:3_x", "A" * 128])
def test_a_safe_caller_request_id_is_kept(value: str):
    assert request_id_from(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "A" * 129,
        "abc\r\nSet-Cookie: session=1",
        "abc\n",
        "has space",
        '"quoted"',
        "<script>",
        "id;rm -rf",
        "caf\u00e9",
    ],
)
def test_an_unsafe_or_missing_request_id_is_replaced(value: str | None):
    generated = request_id_from(value)
    assert GENERATED_ID.fullmatch(generated)
    assert generated != request_id_from(value)  # fresh every time


async def test_the_request_id_is_echoed_or_generated_on_every_response(metrics):
    async with client_for(wrapped(metrics), raise_app_exceptions=False) as client:
        kept = await client.get("/ok", headers={REQUEST_ID_HEADER: "trace-42"})
        assert kept.headers[REQUEST_ID_HEADER] == "trace-42"

        for unsafe in ("x" * 129, "a b", "a,b"):
            response = await client.get("/ok", headers={REQUEST_ID_HEADER: unsafe})
            assert GENERATED_ID.fullmatch(response.headers[REQUEST_ID_HEADER])

        seen = set()
        for path, status in [("/ok", 200), ("/nope", 404), ("/boom", 500), ("/graphql", 200)]:
            response = await client.get(path)
            assert response.status_code == status
            seen.add(response.headers[REQUEST_ID_HEADER])
        assert len(seen) == 4 and all(GENERATED_ID.fullmatch(value) for value in seen)

        own = await client.get("/own-id", headers={REQUEST_ID_HEADER: "trace-43"})
        assert own.headers.get_list(REQUEST_ID_HEADER) == ["trace-43"]


async def test_an_app_failing_before_answering_still_answers_with_the_request_id(metrics, log):
    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("no answer at all")

    app = ObservabilityMiddleware(raw_app, metrics=metrics)
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.post("/graphql", headers={REQUEST_ID_HEADER: "trace-44"})
    assert response.status_code == 500
    assert response.headers[REQUEST_ID_HEADER] == "trace-44"
    assert "no answer" not in response.text
    [line] = log.records()
    assert line["status"] == 500 and line["request_id"] == "trace-44"

    async with client_for(app) as client:
        with pytest.raises(RuntimeError, match="no answer at all"):
            await client.get("/ok")  # still raised, for the server to log


def test_over_real_http_ids_and_the_log_line(metrics, log):
    with serve(wrapped(metrics)) as url:
        missing = httpx.get(f"{url}/nope")
        answered = httpx.post(
            f"{url}/graphql", json={"query": SECRET_QUERY}, headers={REQUEST_ID_HEADER: "t-45"}
        )
    assert missing.status_code == 404
    assert GENERATED_ID.fullmatch(missing.headers[REQUEST_ID_HEADER])
    assert answered.headers[REQUEST_ID_HEADER] == "t-45"
    [line] = log.records()
    assert line["request_id"] == "t-45" and line["status"] == 200 and line["method"] == "POST"


# --- the GraphQL log line and metrics -------------------------------------------------


async def observed_graphql(request: Request) -> Response:
    """Stands in for the GraphQL view and the layers below it."""
    await request.body()
    set_operation("OpenJobs")
    set_integration("personio:CBNMt7dSNCzBdnRTx87dev4E")
    set_client("frontend")
    set_documents([("OpenJobs-7", "OpenJobs-7")])
    count("upstream_calls", 2)
    count("retries")
    count("cache_hits", 3)
    count("cache_misses")
    record_error_codes(["RATE_LIMITED", "UPSTREAM_ERROR"])
    return JSONResponse({"data": None, "errors": []})


async def test_one_json_line_per_graphql_request_without_secrets(metrics, log):
    async with client_for(wrapped(metrics, observed_graphql)) as client:
        await client.get("/ok")
        await client.post(
            "/graphql",
            json={"query": SECRET_QUERY, "variables": {"key": SECRET_VARIABLE}},
            headers={
                "Authorization": f"Bearer {SECRET_KEY}",
                "X-Api-Key": SECRET_KEY,
                REQUEST_ID_HEADER: "trace-46",
            },
        )
    assert current_stats() is None  # ASGITransport ran the app in this task: reset after it
    [raw] = log.lines
    for secret in (SECRET_KEY, SECRET_VARIABLE, "hidden-text", "query Secret", "Bearer"):
        assert secret not in raw
    line = json.loads(raw)
    assert set(line) == LOG_FIELDS
    duration = line.pop("duration_ms")
    assert isinstance(duration, float) and duration >= 0 and round(duration, 1) == duration
    assert line.pop("ts").endswith("Z")
    assert line == {
        "level": "INFO",
        "logger": "gateway.requests",
        "message": "graphql request",
        "event": "graphql_request",
        "request_id": "trace-46",
        "method": "POST",
        "status": 200,
        "operation": "OpenJobs",
        "upstream_calls": 2,
        "upstream_errors": 0,
        "retries": 1,
        "cache_hits": 3,
        "cache_misses": 1,
        "response_cache": None,
        "error_codes": ["RATE_LIMITED", "UPSTREAM_ERROR"],
        "integration": "personio:CBNMt7dSNCzBdnRTx87dev4E",
        "client": "frontend",
        "documents": ["OpenJobs-7"],
    }


async def test_graphql_requests_are_measured_by_status_and_error_code(metrics, log):
    async def rejecting(request: Request) -> Response:
        record_error_codes(["BAD_USER_INPUT"])
        return JSONResponse({"errors": []}, status_code=400)

    async with client_for(wrapped(metrics, observed_graphql)) as client:
        await client.post("/graphql", json={"query": "{ a }"})
        await client.get("/graphql")
        await client.get("/ok")  # not the GraphQL path: neither logged nor measured
    async with client_for(wrapped(metrics, rejecting)) as client:
        await client.put("/graphql")

    def sample(name: str, **labels: str):
        return metrics.registry.get_sample_value(name, labels)

    assert sample("gateway_graphql_requests_total", status="200") == 2
    assert sample("gateway_graphql_requests_total", status="400") == 1
    assert sample("gateway_graphql_errors_total", code="RATE_LIMITED") == 2
    assert sample("gateway_graphql_errors_total", code="BAD_USER_INPUT") == 1
    assert sample("gateway_graphql_request_duration_seconds_count") == 3
    assert sample("gateway_graphql_request_duration_seconds_bucket", le="30.0") == 3
    assert [line["method"] for line in log.records()] == ["POST", "GET", "PUT"]


async def test_a_failing_graphql_request_is_logged_once_as_a_500(metrics, log):
    async with client_for(wrapped(metrics, boom), raise_app_exceptions=False) as client:
        response = await client.post("/graphql", json={"query": "{ a }"})
    assert response.status_code == 500
    [line] = log.records()
    assert line["status"] == 500
    assert metrics.registry.get_sample_value("gateway_graphql_requests_total", {"status": "500"})


async def test_concurrent_requests_count_each_their_own(metrics, log):
    both_started = asyncio.Barrier(2)

    async def slow(request: Request) -> Response:
        hits = int(request.query_params["hits"])
        await both_started.wait()
        for _ in range(hits):
            count("cache_hits")
            await asyncio.sleep(0.005)  # the other request counts in between

        async def spawned() -> None:  # a task of the request counts into it too
            count("upstream_calls")

        await asyncio.create_task(spawned())
        stats = current_stats()
        assert stats is not None
        return JSONResponse({"hits": stats.cache_hits, "id": stats.request_id})

    async with client_for(wrapped(metrics, slow)) as client:
        three, five = await asyncio.gather(
            client.get("/graphql", params={"hits": 3}, headers={REQUEST_ID_HEADER: "three"}),
            client.get("/graphql", params={"hits": 5}, headers={REQUEST_ID_HEADER: "five"}),
        )
    assert three.json() == {"hits": 3, "id": "three"}
    assert five.json() == {"hits": 5, "id": "five"}
    lines = {line["request_id"]: line for line in log.records()}
    assert lines["three"]["cache_hits"] == 3 and lines["five"]["cache_hits"] == 5
    assert lines["three"]["upstream_calls"] == 1 == lines["five"]["upstream_calls"]
    assert current_stats() is None  # the context variable was reset


def test_counting_outside_a_request_is_a_no_op_but_a_typo_is_not():
    assert current_stats() is None
    count("cache_hits")
    record_error_codes(["RATE_LIMITED"])
    set_operation("Nothing")
    with pytest.raises(ValueError, match="not a request counter"):
        count("cache_hit")  # type: ignore[arg-type]


def test_helpers_write_to_the_current_stats():
    stats = RequestStats(request_id="r1")
    token = current_request.set(stats)
    try:
        count("upstream_errors", 2)
        record_error_codes(("FORBIDDEN",))
        set_operation("Op")
    finally:
        current_request.reset(token)
    assert (stats.upstream_errors, stats.error_codes, stats.operation_name) == (
        2,
        ["FORBIDDEN"],
        "Op",
    )


# --- JSON logs -----------------------------------------------------------------------


def test_json_formatter_writes_extras_and_exceptions():
    handler = JsonLines()
    logger = logging.getLogger("tests.observability.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello %s", "world", extra={"event": "greeting", "n": 2, "obj": object()})
        try:
            raise ValueError("broken")
        except ValueError:
            logger.exception("it failed", extra={"level": "spoofed"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    greeting, failure = handler.records()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", greeting["ts"])
    assert greeting["level"] == "WARNING" and greeting["logger"] == "tests.observability.json"
    assert greeting["message"] == "hello world"
    assert greeting["event"] == "greeting" and greeting["n"] == 2
    assert greeting["obj"].startswith("<object object")
    assert "exception" not in greeting
    assert not {"args", "msg", "levelno", "pathname", "thread", "exc_info"} & set(greeting)
    assert failure["level"] == "ERROR"  # an extra never replaces a base field
    assert "Traceback" in failure["exception"] and "ValueError: broken" in failure["exception"]


def test_configure_logging_installs_one_json_handler_on_stderr(capsys):
    root, upstream = logging.getLogger(), logging.getLogger("httpx")
    before, level, upstream_level = list(root.handlers), root.level, upstream.level
    try:
        configure_logging("debug")
        configure_logging("INFO")
        added = [handler for handler in root.handlers if handler not in before]
        assert len(added) == 1 and isinstance(added[0].formatter, JsonFormatter)
        assert root.level == logging.INFO
        logging.getLogger("tests.observability.root").info("ready", extra={"port": 8000})
        # httpx's line per upstream call would repeat what the request's line counts.
        upstream.info("HTTP Request: GET https://api.kombo.dev/v1/ats/jobs")
        upstream.warning("something httpx warns about")
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
        upstream.setLevel(upstream_level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == ["ready", "something httpx warns about"]
    assert lines[0]["port"] == 8000


# --- upstream hooks -------------------------------------------------------------------


async def kombo_answer(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(0.01)
    return httpx.Response(503 if request.url.path == "/bad" else 200, json={})


async def test_upstream_hooks_count_calls_errors_and_time(metrics):
    hooks = upstream_hooks(metrics)
    stats = RequestStats(request_id="r2")
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(kombo_answer), event_hooks=hooks
    ) as http:
        token = current_request.set(stats)
        try:
            await http.get("http://kombo.test/ok")
            await http.get("http://kombo.test/bad")
        finally:
            current_request.reset(token)
        await http.get("http://kombo.test/ok")  # outside a request: only the metrics count

    assert (stats.upstream_calls, stats.upstream_errors) == (2, 1)

    def sample(name: str, **labels: str):
        return metrics.registry.get_sample_value(name, labels)

    assert sample("kombo_upstream_requests_total", status="200") == 2
    assert sample("kombo_upstream_requests_total", status="503") == 1
    assert sample("kombo_upstream_request_duration_seconds_count") == 3
    assert (sample("kombo_upstream_request_duration_seconds_sum") or 0) >= 0.03


# --- tracing -------------------------------------------------------------------------

PARAMS = {
    "ids": "26vafvWSRmbhNcxJYqjCzuJg,36vafvWSRmbhNcxJYqjCzuJg,",
    "page_size": "250",
    "cursor": "CURSOR_VALUE",
    "name_contains": "hidden-text",
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert enable_tracing(provider)
    try:
        yield exporter
    finally:
        disable_tracing()
        provider.shutdown()


def test_upstream_span_is_a_no_op_when_tracing_is_off():
    disable_tracing()
    span = upstream_span("personio:X", PARAMS)
    assert isinstance(span, contextlib.nullcontext)
    with span:
        pass


def test_upstream_span_records_what_was_asked_and_no_values(spans):
    with upstream_span("personio:CBNM", PARAMS):
        pass
    [span] = spans.get_finished_spans()
    assert span.name == "kombo GET /ats/jobs" and span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "kombo.integration": "personio:CBNM",
        "http.request.method": "GET",
        "kombo.page_size": 250,
        "kombo.ids_count": 2,
    }
    assert span.status.status_code is StatusCode.UNSET


def test_upstream_span_without_ids_or_page_size(spans):
    with upstream_span("personio:CBNM", {"cursor": "CURSOR_VALUE"}):
        pass
    [span] = spans.get_finished_spans()
    assert set(span.attributes or {}) == {"kombo.integration", "http.request.method"}


def test_a_failed_attempt_marks_its_span_as_an_error_without_the_message(spans):
    with pytest.raises(RuntimeError), upstream_span("personio:CBNM", PARAMS):
        raise RuntimeError(f"Kombo echoed {SECRET_KEY}")
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError"
    assert (span.attributes or {})["error.type"] == "RuntimeError"
    assert not span.events  # no exception event: its message could quote Kombo
    exported = json.dumps(
        {"attributes": dict(span.attributes or {}), "status": span.status.description}
    )
    assert SECRET_KEY not in exported and "CURSOR_VALUE" not in exported


def test_enable_tracing_without_a_provider_uses_the_global_one():
    try:
        assert enable_tracing()
        assert tracing.tracing_enabled()
        with upstream_span("personio:CBNM", {}):
            pass
    finally:
        disable_tracing()


def test_enable_tracing_is_false_without_opentelemetry(monkeypatch):
    disable_tracing()
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    assert enable_tracing() is False
    assert not tracing.tracing_enabled()
    assert isinstance(upstream_span("personio:X", {}), contextlib.nullcontext)


# --- place in the import order -----------------------------------------------------------


@pytest.mark.parametrize(
    "module", sorted(path.name for path in (GATEWAY / "observability").glob("*.py"))
)
def test_observability_sits_low_in_the_import_order(module: str):
    names = imports_of(GATEWAY / "observability" / module)
    ours = {name for name in names if name.startswith("gateway.")}
    assert all(name.startswith(("gateway.observability.", "gateway.config")) for name in ours)
    roots = {name.split(".")[0] for name in names}
    assert not roots & {"strawberry", "graphql", "orjson", "starlette", "httpx"}
    # OpenTelemetry is optional: imported inside functions (or for type checking) only.
    module_level = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.parse((GATEWAY / "observability" / module).read_text()).body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name and name.startswith("opentelemetry") for name in module_level)
