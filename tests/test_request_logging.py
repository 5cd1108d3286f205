"""One log line per GraphQL request from the real gateway: what it says, and never secrets."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY
from tests.support import GraphQLClient, Upstream


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The request log lines so far; the line is written just after the answer is sent,
    so give the server thread a moment."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [r for r in caplog.records if r.name == "gateway.requests"]
        if lines:
            time.sleep(0.05)  # and let any (wrong) second line show up too
            return [r for r in caplog.records if r.name == "gateway.requests"]
        time.sleep(0.01)
    return []


def test_a_request_logs_one_line_with_its_figures(
    gql: GraphQLClient, upstream: Upstream, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="gateway.requests")
    secret_value = "candidate-secret-in-a-variable"
    response = gql.post(
        "query Listing($n: String) { jobs(first: 2, filter: {nameContains: $n}) { nodes { id } } "
        'bad: job(id: "nope") { id } }',
        {"n": secret_value},
        headers={"X-Request-Id": "trace-1234", "Authorization": "Bearer not-configured"},
    )
    assert response.headers["X-Request-Id"] == "trace-1234"
    (line,) = request_lines(caplog)
    fields = line.__dict__
    assert fields["request_id"] == "trace-1234"
    assert fields["operation"] == "Listing"
    assert fields["status"] == 200
    assert fields["upstream_calls"] == upstream.count() == 1
    assert fields["error_codes"] == ["BAD_USER_INPUT"]
    assert fields["duration_ms"] > 0
    text = str(fields)
    for secret in (secret_value, SANDBOX_API_KEY, "not-configured", "nameContains"):
        assert secret not in text


def test_an_unsafe_request_id_is_replaced(gql: GraphQLClient):
    unsafe = "<script>" + "x" * 200
    response = gql.post("{ __typename }", headers={"X-Request-Id": unsafe})
    assert response.headers["X-Request-Id"] != unsafe
    assert len(response.headers["X-Request-Id"]) >= 16


def test_metrics_count_requests_and_errors_by_code(gql: GraphQLClient, gateway_url: str):
    gql.post('{ job(id: "nope") { id } }')
    text = httpx.get(f"{gateway_url}/metrics").text
    assert 'gateway_graphql_errors_total{code="BAD_USER_INPUT"}' in text
    assert 'gateway_graphql_requests_total{status="200"}' in text
    assert "gateway_graphql_request_duration_seconds_bucket" in text
    assert "kombo_upstream_request_duration_seconds_bucket" in text


def test_tracing_records_a_span_per_upstream_call(gql: GraphQLClient, upstream: Upstream):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gateway.observability.tracing import disable_tracing, enable_tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert enable_tracing(provider)
    try:
        gql.data("{ jobs(first: 3) { nodes { id } } }")
    finally:
        disable_tracing()
        provider.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.name == "kombo GET /ats/jobs"
    assert span.attributes is not None
    assert span.attributes["kombo.page_size"] == 3
    assert upstream.count() == 1
    assert SANDBOX_API_KEY not in str(dict(span.attributes))
