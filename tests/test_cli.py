"""`kombo-gateway serve` as `make run` starts it: no key, embedded sandbox, offline GraphiQL."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import httpx
import pytest

from gateway.cli import needs_embedded_sandbox
from gateway.config import SANDBOX_API_KEY, Settings
from gateway.http.access import KOMBO_KEY_HEADER
from gateway.http.graphiql import assets_available
from gateway.http.serving import free_port
from tests.conftest import INTEGRATION_A
from tests.support import Upstream, wait_until


class AssetLinks(HTMLParser):
    """Collects every script `src` and stylesheet `href` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"] or "")
        if tag == "link" and values.get("rel") == "stylesheet" and values.get("href"):
            self.urls.append(values["href"] or "")


def _wait_for(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{process.stdout and process.stdout.read()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def start_serve(
    env: Mapping[str, str] | None = None, stderr: int | IO[str] = subprocess.STDOUT
) -> tuple[str, subprocess.Popen[str]]:
    """`python -m gateway serve` on a free port with no Kombo settings but `env`
    (none at all: as on a fresh machine); returns its URL and process."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KOMBO_", "GATEWAY_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        env={**clean, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,  # its own process group: see `kill_all`
    )
    return f"http://127.0.0.1:{port}", process


def kill_all(process: subprocess.Popen[str]) -> None:
    """Kill `serve` and whatever it started (its sandbox) after a failed test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m gateway serve` with no Kombo settings at all, as on a fresh machine."""
    url, process = start_serve()
    try:
        _wait_for(f"{url}/readyz", process)
        yield url, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_serve_without_a_key_runs_on_the_sandbox_and_says_so(served: tuple[str, Any]):
    url, _ = served
    result = httpx.post(
        f"{url}/graphql", json={"query": "{ jobs(first: 2) { nodes { komboId } } }"}
    ).json()
    assert len(result["data"]["jobs"]["nodes"]) == 2
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}


def test_graphiql_page_and_all_its_assets_come_from_the_gateway(served: tuple[str, Any]):
    url, _ = served
    assert assets_available(), "GraphiQL assets are not built: run `make assets`"
    page = httpx.get(f"{url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    links = AssetLinks()
    links.feed(page.text)
    assert len(links.urls) >= 4, links.urls  # React, ReactDOM, GraphiQL (+ CSS), explorer
    for link in links.urls:
        assert not re.match(r"^(https?:)?//", link), f"external asset: {link}"
        asset = httpx.get(urljoin(f"{url}/graphql", link))
        assert asset.status_code == 200, link
        assert asset.content, link
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page.text)


def test_health_command_reports_a_running_gateway(served: tuple[str, Any]):
    url, _ = served
    ok = subprocess.run([sys.executable, "-m", "gateway", "health", "--url", f"{url}/healthz"])
    assert ok.returncode == 0
    down = subprocess.run(
        [sys.executable, "-m", "gateway", "health", "--url", f"http://127.0.0.1:{free_port()}/"],
        capture_output=True,
    )
    assert down.returncode == 1


def test_get_queries_work(served: tuple[str, Any]):
    url, _ = served
    result = httpx.get(f"{url}/graphql", params={"query": "{ jobs(first: 1) { nodes { id } } }"})
    assert result.status_code == 200
    assert len(result.json()["data"]["jobs"]["nodes"]) == 1


def test_serve_wires_its_sandbox_to_its_own_webhook_endpoint(served: tuple[str, Any]):
    """`make run`: the embedded sandbox gets the gateway's webhook URL and a secret made
    for this run (read here from the sandbox process's environment), and a webhook
    signed with it drops the gateway's cached answers."""
    url, process = served
    pid = process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    [sandbox_pid] = [c for c in children if b"sandbox" in Path(f"/proc/{c}/cmdline").read_bytes()]
    environ = dict(
        entry.decode().split("=", 1)
        for entry in Path(f"/proc/{sandbox_pid}/environ").read_bytes().split(b"\0")
        if b"=" in entry
    )
    assert environ["SANDBOX_WEBHOOK_URL"] == f"{url}/webhooks/kombo"
    secret = environ["SANDBOX_WEBHOOK_SECRET"]
    assert len(secret) >= 32
    arguments = Path(f"/proc/{sandbox_pid}/cmdline").read_bytes().split(b"\0")
    sandbox = Upstream(f"http://127.0.0.1:{arguments[arguments.index(b'--port') + 1].decode()}")
    sandbox.reset()
    query = {"query": "{ jobs(first: 3) { nodes { komboId } } }"}
    for _ in range(2):
        assert httpx.post(f"{url}/graphql", json=query).status_code == 200
    assert sandbox.count() == 1  # cached (serve's default TTL)
    event = {
        "id": "evt_make_run",
        "type": "data-changed",
        "data": {"integration_id": INTEGRATION_A, "changed_models": [{"name": "ats_jobs"}]},
    }
    body = json.dumps(event).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    answer = httpx.post(
        environ["SANDBOX_WEBHOOK_URL"], content=body, headers={"X-Kombo-Signature": signature}
    )
    assert answer.json() == {"status": "invalidated"}
    assert httpx.post(f"{url}/graphql", json=query).status_code == 200
    assert sandbox.count() == 2


def test_editing_a_sandbox_job_shows_in_the_next_answer(served: tuple[str, Any]):
    """`make run`'s promise: change a job in the sandbox and the gateway's next answer has
    it, though the old one was cached: the sandbox signs and sends Kombo's data-changed
    to the gateway, which drops the integration's cached answers."""
    url, process = served
    pid = process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    [sandbox_pid] = [c for c in children if b"sandbox" in Path(f"/proc/{c}/cmdline").read_bytes()]
    arguments = Path(f"/proc/{sandbox_pid}/cmdline").read_bytes().split(b"\0")
    sandbox = f"http://127.0.0.1:{arguments[arguments.index(b'--port') + 1].decode()}"
    query = {"query": "{ jobs(first: 1) { nodes { komboId name } } }"}

    def first_job() -> dict[str, Any]:
        node: dict[str, Any] = httpx.post(f"{url}/graphql", json=query).json()["data"]["jobs"][
            "nodes"
        ][0]
        return node

    job = first_job()
    assert first_job() == job  # cached
    renamed = f"{job['name']} (edited)"
    change = {"changes": [{"id": job["komboId"], "set": {"name": renamed}}]}
    answer = httpx.post(f"{sandbox}/_sandbox/jobs/changes", json=change)
    assert answer.status_code == 200 and answer.json()["events"]

    def delivered() -> bool:
        deliveries = httpx.get(f"{sandbox}/_sandbox/webhooks").json()["deliveries"]
        return any(d["status"] == "delivered" for d in deliveries)

    wait_until(delivered, 10, "the sandbox's webhook to reach the gateway")
    assert first_job()["name"] == renamed


def test_an_idle_connection_outlives_the_clients_keepalive(served: tuple[str, Any]):
    """The gateway must not close an idle connection before its clients do (httpx keeps
    one 5 s; load balancers up to 60 s): a request sent as the server closes is lost."""
    url, _ = served
    host, port = url.removeprefix("http://").split(":")
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def answer(connection: socket.socket) -> bytes:
        """One whole answer (it may arrive in more than one segment)."""
        received = b""
        while not received.endswith(b'{"status":"ok"}'):
            chunk = connection.recv(4096)
            assert chunk, received
            received += chunk
        return received

    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        assert answer(connection).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # past uvicorn's default (5 s) and httpx's keep-alive expiry
        connection.sendall(request)
        assert answer(connection).startswith(b"HTTP/1.1 200")


def test_stopping_serve_stops_its_sandbox_and_output_never_shows_a_key(
    served: tuple[str, Any],
):
    url, process = served
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert "sandbox" in output.lower()
    assert SANDBOX_API_KEY not in output
    assert "/webhooks/kombo" in output  # where the sandbox sends its webhooks
    sandbox = re.search(r"(http://127\.0\.0\.1:\d+)/v1", output)
    assert sandbox, output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{sandbox.group(1)}/healthz", timeout=2)


def test_schema_federation_prints_the_subgraph_sdl():
    printed = subprocess.run(
        [sys.executable, "-m", "gateway", "schema", "--federation"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "@link" in printed and '@key(fields: "komboId")' in printed


def test_sigterm_drains_requests_in_flight():
    """A request in flight when the gateway is told to stop still gets its answer."""
    url, process = start_serve()
    try:
        _wait_for(f"{url}/readyz", process)
        assert process.stdout is not None
        sandbox = None
        while sandbox is None:
            sandbox = re.search(r"(http://127\.0\.0\.1:\d+)/v1", process.stdout.readline())
        faults = f"{sandbox.group(1)}/_sandbox/faults"
        slow = {"status": 200, "latency_ms": 1500, "path": "/v1/ats/jobs"}
        httpx.post(faults, json={"faults": [slow]}).raise_for_status()
        with httpx.Client(timeout=30) as client:
            pending = client.build_request(
                "POST", f"{url}/graphql", json={"query": "{ jobs(first: 1) { nodes { id } } }"}
            )

            answers: list[httpx.Response] = []
            sender = threading.Thread(target=lambda: answers.append(client.send(pending)))
            sender.start()
            # In flight: the gateway's call took the fault and waits on the slow sandbox.
            wait_until(lambda: not httpx.get(faults).json()["faults"], 10, "the slow query")
            process.send_signal(signal.SIGTERM)
            sender.join(timeout=30)
        assert answers and answers[0].status_code == 200
        assert len(answers[0].json()["data"]["jobs"]["nodes"]) == 1
        assert process.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):  # and its sandbox stopped with it
            httpx.get(f"{sandbox.group(1)}/healthz", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize(
    ("environ", "sandbox"),
    [
        ({}, True),
        ({"KOMBO_API_KEY": "ks_live_1234567890"}, False),
        ({"KOMBO_BASE_URL": "https://kombo.internal/v1"}, True),  # no key to call it with
        ({"GATEWAY_KOMBO_KEY_PASSTHROUGH": "true"}, True),  # no upstream named: try it out
        ({"GATEWAY_KOMBO_KEY_PASSTHROUGH": "true", "KOMBO_BASE_URL": "https://k/v1"}, False),
        ({"GATEWAY_KOMBO_KEY_PASSTHROUGH": "true", "KOMBO_REGION": "us"}, False),
    ],
)
def test_the_embedded_sandbox_stands_in_only_when_there_is_no_kombo_to_call(
    environ: dict[str, str], sandbox: bool
) -> None:
    assert needs_embedded_sandbox(Settings.from_env(environ), environ) is sandbox


def test_pass_through_without_a_server_key_serves_the_configured_upstream(
    sandbox_url: str, upstream: Upstream
) -> None:
    """Pass-through needs no key of our own: `serve` must call the upstream it was
    given (here the tests' sandbox), not start its own sandbox over it."""
    url, process = start_serve(
        {"GATEWAY_KOMBO_KEY_PASSTHROUGH": "true", "KOMBO_BASE_URL": f"{sandbox_url}/v1"}
    )
    try:
        _wait_for(f"{url}/readyz", process)
        headers = {KOMBO_KEY_HEADER: SANDBOX_API_KEY, "X-Integration-Id": INTEGRATION_A}
        result = httpx.post(
            f"{url}/graphql",
            json={"query": "{ jobs(first: 2) { nodes { komboId } } }"},
            headers=headers,
        ).json()
        assert len(result["data"]["jobs"]["nodes"]) == 2
        assert [r["path"] for r in upstream.requests()][-1] == "/v1/ats/jobs"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            kill_all(process)
    assert "embedded" not in output and f"Serving Kombo at {sandbox_url}/v1" in output, output
    assert SANDBOX_API_KEY not in output


def test_every_stderr_line_is_json_even_when_a_client_sends_garbage(tmp_path: Path) -> None:
    """uvicorn logs what a client provokes ("Invalid HTTP request received."): through
    the gateway's JSON logger, like everything else a log shipper reads."""
    log = tmp_path / "stderr"
    with log.open("w") as stderr:
        url, process = start_serve(stderr=stderr)
    try:
        _wait_for(f"{url}/readyz", process)
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 5) as garbage:
            garbage.sendall(b"GARBAGE\r\n\r\n")
            assert garbage.recv(4096).startswith(b"HTTP/1.1 400")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        kill_all(process)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and all(isinstance(record, dict) for record in records)
    messages = [record["message"] for record in records]
    assert "Invalid HTTP request received." in messages, messages
    assert not any("color_message" in record for record in records)
