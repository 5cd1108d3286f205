"""The sandbox's test-only fault controls (`/_sandbox/faults`, `/_sandbox/chaos`) over real HTTP."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from gateway.sandbox.app import create_sandbox_app
from tests.support import LiveServer

GREENHOUSE, PERSONIO = SANDBOX_INTEGRATION_IDS
AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}
FAULT_DEFAULTS: dict[str, Any] = {
    "status": 503,
    "kombo_code": None,
    "title": None,
    "message": None,
    "body": None,
    "headers": {},
    "times": 1,
    "latency_ms": 0,
    "drop_connection": False,
    "integration": None,
    "match_params": None,
    "path": None,
}


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def control(sandbox: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def client(sandbox: LiveServer) -> Iterator[httpx.Client]:
    headers = {**AUTH, "X-Integration-Id": GREENHOUSE}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10) as http:
        yield http


@pytest.fixture(autouse=True)
def clean(control: httpx.Client) -> Iterator[None]:
    """Every test starts and ends with no faults, no chaos and an empty request log."""
    control.delete("/_sandbox/faults")
    control.delete("/_sandbox/requests")
    yield
    control.delete("/_sandbox/faults")


@contextlib.contextmanager
def uvicorn_errors() -> Iterator[list[logging.LogRecord]]:
    """Errors uvicorn logs meanwhile (e.g. "returned without starting response": a 500).

    Enter it after the server started: uvicorn's logging setup drops earlier handlers.
    """
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def queue(control: httpx.Client, *faults: dict[str, Any]) -> list[dict[str, Any]]:
    response = control.post("/_sandbox/faults", json={"faults": list(faults)})
    assert response.status_code == 200, response.text
    pending: list[dict[str, Any]] = response.json()["faults"]
    return pending


def jobs(client: httpx.Client, integration: str = GREENHOUSE, **params: Any) -> httpx.Response:
    params.setdefault("page_size", 1)
    return client.get("/ats/jobs", params=params, headers={"X-Integration-Id": integration})


def log(control: httpx.Client) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = control.get("/_sandbox/requests").json()["requests"]
    return entries


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["status"] == "error"
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "title", "message", "log_url"}
    return error


def raw_request(sandbox: LiveServer, path: str = "/v1/ats/jobs") -> bytes:
    """One request on a plain socket: every byte the server sent before the connection ended."""
    with socket.create_connection((sandbox.host, sandbox.port), timeout=5) as sock:
        head = (
            f"GET {path} HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer {SANDBOX_API_KEY}\r\n"
            f"X-Integration-Id: {GREENHOUSE}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


# --------------------------------------------------------------------------------------------
# Fault kinds
# --------------------------------------------------------------------------------------------


def test_default_fault_is_a_503_without_code(client: httpx.Client, control: httpx.Client) -> None:
    assert queue(control, {}) == [FAULT_DEFAULTS]
    response = jobs(client)
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] is None and error["title"] is None and error["log_url"] is None
    assert error["message"]
    assert jobs(client).status_code == 200  # times defaults to 1


def test_kombo_code_gets_kombo_envelope(client: httpx.Client, control: httpx.Client) -> None:
    queue(
        control,
        {"status": 429, "kombo_code": "PLATFORM.RATE_LIMIT_EXCEEDED"},
        {
            "status": 409,
            "kombo_code": "INTEGRATION.SETUP_SYNC_PENDING",
            "title": "T",
            "message": "M",
        },
        {"status": 500, "kombo_code": "PLATFORM.SOMETHING_NEW"},
    )
    first, second, third = jobs(client), jobs(client), jobs(client)
    assert (first.status_code, second.status_code, third.status_code) == (429, 409, 500)
    error = error_of(first)
    assert error["code"] == "PLATFORM.RATE_LIMIT_EXCEEDED"
    assert error["title"] == "Rate limit exceeded" and error["message"]
    assert error["log_url"].startswith("https://app.kombo.dev/logs/")
    assert error_of(second) == {**error_of(second), "title": "T", "message": "M"}
    assert error_of(third)["title"] == "Something new"
    assert error_of(first)["log_url"] != error_of(third)["log_url"]


def test_json_body_overrides_the_envelope(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 502, "body": {"oops": [1, 2]}, "kombo_code": "IGNORED.CODE"})
    response = jobs(client)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"oops": [1, 2]}


def test_string_body_is_sent_as_html(client: httpx.Client, control: httpx.Client) -> None:
    page = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    queue(control, {"status": 503, "body": page})
    response = jobs(client)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == page


def test_headers_pass_through_and_win(client: httpx.Client, control: httpx.Client) -> None:
    queue(
        control,
        {"status": 429, "kombo_code": "PLATFORM.RATE_LIMIT_EXCEEDED",
         "headers": {"Retry-After": "7", "ratelimit-reset": "42", "ratelimit-remaining": "0"}},
        {"status": 200, "headers": {"X-Sandbox-Note": "slow"}},
    )  # fmt: skip
    limited = jobs(client)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["ratelimit-reset"] == "42"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-limit"] == "300"  # the edge's headers are still there
    assert limited.headers.get_list("ratelimit-reset") == ["42"]
    real = jobs(client)
    assert real.status_code == 200 and len(real.json()["data"]["results"]) == 1
    assert real.headers["x-sandbox-note"] == "slow"


def test_status_200_with_latency_delays_the_real_answer(
    client: httpx.Client, control: httpx.Client
) -> None:
    queue(control, {"status": 200, "latency_ms": 300})
    started = time.perf_counter()
    response = jobs(client, page_size=3)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and len(response.json()["data"]["results"]) == 3
    assert 0.3 <= elapsed < 2.5
    started = time.perf_counter()
    assert jobs(client).status_code == 200
    assert time.perf_counter() - started < 0.3


def test_latency_before_an_error(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 503, "kombo_code": "REMOTE.SERVICE_UNAVAILABLE", "latency_ms": 200})
    started = time.perf_counter()
    assert jobs(client).status_code == 503
    assert 0.2 <= time.perf_counter() - started < 2.5


def test_latency_does_not_block_other_requests(sandbox: LiveServer, control: httpx.Client) -> None:
    queue(control, {"status": 200, "latency_ms": 800, "integration": PERSONIO})
    headers = {**AUTH, "X-Integration-Id": GREENHOUSE}
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(
            httpx.get,
            sandbox.base_url + "/ats/jobs",
            headers={**AUTH, "X-Integration-Id": PERSONIO},
        )
        time.sleep(0.1)
        started = time.perf_counter()
        fast = httpx.get(sandbox.base_url + "/ats/jobs?page_size=1", headers=headers)
        assert fast.status_code == 200 and time.perf_counter() - started < 0.5
        assert slow.result().status_code == 200


# --------------------------------------------------------------------------------------------
# Dropped connections
# --------------------------------------------------------------------------------------------


def test_drop_connection_is_a_transport_error(client: httpx.Client, control: httpx.Client) -> None:
    assert jobs(client).status_code == 200  # a pooled keep-alive connection exists now
    queue(control, {"drop_connection": True, "status": 200})
    with uvicorn_errors() as errors, pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        jobs(client)
    assert jobs(client).status_code == 200  # the client reconnects; the server is fine
    entries = log(control)
    assert [e["status"] for e in entries] == [200, 0, 200]
    assert entries[1]["dropped"] is True and entries[1]["fault"] == "queued"
    assert "dropped" not in entries[2]
    assert errors == []


def test_drop_connection_sends_no_byte(sandbox: LiveServer, control: httpx.Client) -> None:
    queue(control, {"drop_connection": True, "latency_ms": 50})
    assert raw_request(sandbox) == b""
    assert raw_request(sandbox).startswith(b"HTTP/1.1 200 ")


def test_drop_works_when_send_is_wrapped() -> None:
    """Another ASGI layer around the sandbox: the transport is still found, no 500 is sent."""
    inner = create_sandbox_app()

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            await send(message)

        await inner(scope, receive, wrapped)

    with LiveServer(outer) as server, uvicorn_errors() as errors:
        with httpx.Client(base_url=server.url) as control:
            queue(control, {"drop_connection": True})
        assert raw_request(server) == b""
        assert raw_request(server).startswith(b"HTTP/1.1 200 ")
    assert errors == []


# --------------------------------------------------------------------------------------------
# Matching, order, times
# --------------------------------------------------------------------------------------------


def test_times_counts_down(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 500, "times": 3})
    assert [jobs(client).status_code for _ in range(2)] == [500, 500]
    assert control.get("/_sandbox/faults").json() == {"faults": [{**FAULT_DEFAULTS, "status": 500}]}
    assert [jobs(client).status_code for _ in range(2)] == [500, 200]
    assert control.get("/_sandbox/faults").json() == {"faults": []}


def test_fifo_order(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 500}, {"status": 502})
    queue(control, {"status": 504, "times": 2})
    assert [jobs(client).status_code for _ in range(5)] == [500, 502, 504, 504, 200]


def test_integration_matching(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 500, "integration": PERSONIO}, {"status": 502})
    assert jobs(client, GREENHOUSE).status_code == 502  # skips the Personio-only fault
    assert jobs(client, GREENHOUSE).status_code == 200
    assert jobs(client, PERSONIO).status_code == 500


def test_param_matching(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 500, "match_params": {"page_size": "7", "statuses": "OPEN"}})
    assert jobs(client, page_size=7).status_code == 200  # only one of the two params
    assert jobs(client, page_size=8, statuses="OPEN").status_code == 200
    assert jobs(client, page_size=7, statuses="OPEN", name_contains="x").status_code == 500
    assert control.get("/_sandbox/faults").json() == {"faults": []}


def test_path_matching(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 500, "path": "/v1/ats/jobs"})
    assert client.get("/check-api-key").status_code == 200
    assert jobs(client).status_code == 500


def test_only_v1_is_faulted(sandbox: LiveServer, control: httpx.Client) -> None:
    queue(control, {"status": 500})
    assert control.get("/healthz").status_code == 200
    assert control.get("/_sandbox/requests").status_code == 200
    assert len(control.get("/_sandbox/faults").json()["faults"]) == 1


def test_authentication_comes_first(
    sandbox: LiveServer, client: httpx.Client, control: httpx.Client
) -> None:
    queue(control, {"status": 503}, {"drop_connection": True})
    bad = httpx.get(sandbox.base_url + "/ats/jobs", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert error_of(bad)["code"] == "PLATFORM.AUTHENTICATION_INVALID"
    assert len(control.get("/_sandbox/faults").json()["faults"]) == 2  # nothing consumed
    assert jobs(client).status_code == 503


def test_faulted_requests_are_logged(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 429}, {"status": 200, "latency_ms": 1})
    jobs(client, page_size=2)
    jobs(client, PERSONIO)
    jobs(client)
    assert log(control) == [
        {"method": "GET", "path": "/v1/ats/jobs", "query": "page_size=2",
         "params": {"page_size": "2"}, "integration": GREENHOUSE, "status": 429,
         "fault": "queued"},
        {"method": "GET", "path": "/v1/ats/jobs", "query": "page_size=1",
         "params": {"page_size": "1"}, "integration": PERSONIO, "status": 200, "fault": "queued"},
        {"method": "GET", "path": "/v1/ats/jobs", "query": "page_size=1",
         "params": {"page_size": "1"}, "integration": GREENHOUSE, "status": 200},
    ]  # fmt: skip


def test_times_is_exact_under_concurrency(sandbox: LiveServer, control: httpx.Client) -> None:
    queue(control, {"status": 503, "times": 10})
    headers = {**AUTH, "X-Integration-Id": GREENHOUSE}
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(base_url=sandbox.base_url, headers=headers, limits=limits) as http:
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda _: http.get("/check-api-key").status_code, range(48)))
    assert Counter(statuses) == {503: 10, 200: 38}


# --------------------------------------------------------------------------------------------
# Control input
# --------------------------------------------------------------------------------------------


def test_delete_clears_queue_and_chaos(client: httpx.Client, control: httpx.Client) -> None:
    queue(control, {"status": 500, "times": 5})
    assert control.post("/_sandbox/chaos", json={"rates": {"503": 1}}).status_code == 200
    assert control.delete("/_sandbox/faults").status_code == 204
    assert control.get("/_sandbox/faults").json() == {"faults": []}
    assert control.get("/_sandbox/chaos").json() == {"chaos": None}
    assert jobs(client).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"faults": {"status": 503}}',
        b'{"faults": [], "extra": 1}',
        b'{"faults": [42]}',
        b'{"faults": [{"statu": 503}]}',
        b'{"faults": [{"status": "503"}]}',
        b'{"faults": [{"status": 99}]}',
        b'{"faults": [{"status": 600}]}',
        b'{"faults": [{"times": 0}]}',
        b'{"faults": [{"times": true}]}',
        b'{"faults": [{"latency_ms": -1}]}',
        b'{"faults": [{"latency_ms": 1.5}]}',
        b'{"faults": [{"drop_connection": "yes"}]}',
        b'{"faults": [{"kombo_code": 5}]}',
        b'{"faults": [{"headers": {"Retry-After": 1}}]}',
        b'{"faults": [{"headers": ["Retry-After"]}]}',
        b'{"faults": [{"headers": {"X-Bad": "a\\r\\nb"}}]}',
        b'{"faults": [{"headers": {"Bad Name": "1"}}]}',
        b'{"faults": [{"headers": {"Content-Length": "1"}}]}',
        b'{"faults": [{"match_params": {"page_size": 7}}]}',
        b'{"faults": [{"integration": ["a"]}]}',
        b'{"faults": [{"path": "/healthz"}]}',
        b'{"faults": [{}, {"times": -1}]}',
    ],
)
def test_bad_fault_input_is_400(control: httpx.Client, body: bytes) -> None:
    response = control.post("/_sandbox/faults", content=body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert control.get("/_sandbox/faults").json() == {"faults": []}  # all or nothing


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[1]",
        b'{"rates": [0.1]}',
        b'{"rates": {"503": 1.5}}',
        b'{"rates": {"503": -0.1}}',
        b'{"rates": {"503": "0.1"}}',
        b'{"rates": {"503": 0.6, "429": 0.5}}',
        b'{"rates": {"200": 0.1}}',
        b'{"rates": {"teapot": 0.1}}',
        b'{"seed": "7"}',
        b'{"latency_ms": -5}',
        b'{"rate": {"503": 0.1}}',
    ],
)
def test_bad_chaos_input_is_400(control: httpx.Client, body: bytes) -> None:
    response = control.post("/_sandbox/chaos", content=body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert control.get("/_sandbox/chaos").json() == {"chaos": None}


# --------------------------------------------------------------------------------------------
# Chaos
# --------------------------------------------------------------------------------------------


def chaos_run(client: httpx.Client, control: httpx.Client, n: int) -> list[httpx.Response]:
    settings = {"rates": {"503": 0.10, "429": 0.05}, "seed": 7, "latency_ms": 0}
    response = control.post("/_sandbox/chaos", json=settings)
    assert response.json() == {"chaos": settings}
    return [client.get("/check-api-key") for _ in range(n)]


def test_chaos_rates_are_roughly_right_and_deterministic(
    client: httpx.Client, control: httpx.Client
) -> None:
    first = chaos_run(client, control, 400)
    counts = Counter(r.status_code for r in first)
    assert set(counts) == {200, 429, 503}
    assert 25 <= counts[503] <= 60  # expected 40
    assert 8 <= counts[429] <= 35  # expected 20
    again = chaos_run(client, control, 400)
    assert [r.status_code for r in again] == [r.status_code for r in first]
    unavailable = next(r for r in first if r.status_code == 503)
    assert error_of(unavailable)["code"] == "REMOTE.SERVICE_UNAVAILABLE"
    limited = next(r for r in first if r.status_code == 429)
    assert error_of(limited)["code"] == "PLATFORM.RATE_LIMIT_EXCEEDED"
    assert limited.headers["retry-after"] == "1"
    faults = Counter(e.get("fault") for e in log(control))
    assert faults == {None: 2 * counts[200], "chaos": 2 * (counts[429] + counts[503])}
    assert control.delete("/_sandbox/chaos").status_code == 204
    assert {client.get("/check-api-key").status_code for _ in range(50)} == {200}


def test_queued_faults_come_before_chaos(client: httpx.Client, control: httpx.Client) -> None:
    control.post("/_sandbox/chaos", json={"rates": {"503": 1.0}})
    queue(control, {"status": 418})
    assert [jobs(client).status_code for _ in range(3)] == [418, 503, 503]


def test_chaos_latency_and_drop(client: httpx.Client, control: httpx.Client) -> None:
    control.post("/_sandbox/chaos", json={"rates": {}, "latency_ms": 150})
    started = time.perf_counter()
    assert jobs(client).status_code == 200
    assert 0.15 <= time.perf_counter() - started < 2.0
    assert "fault" not in log(control)[-1]
    control.post("/_sandbox/chaos", json={"rates": {"drop": 1.0}})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        jobs(client)
    assert log(control)[-1] == {**log(control)[-1], "status": 0, "dropped": True, "fault": "chaos"}
