"""SIGTERM under load with `serve --workers 2`: stop taking connections at once, finish
every request already taken, exit.

uvicorn's supervisor kept the shared listening socket open while its workers drained,
so connections made during the drain were completed by the kernel, never accepted, and
reset when the supervisor exited: every client lost a request. Each request here
travels on a connection of its own (`Connection: close`), so every request is one the
kernel took during the run: it must be answered in full or refused at connect time.
(A request sent on a kept-alive connection at the moment the server closes it is lost
on any HTTP/1.1 server; clients retry those, RFC 9112 section 9.3.1.)
"""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.http.serving import GRACEFUL_SHUTDOWN_SECONDS
from tests.support import gateway_process, wait_until

#: Bounds how long things take: `make test` runs it alone, after the rest.
pytestmark = pytest.mark.serial

CLIENTS = 32
REQUESTS_PER_CLIENT = 400
QUERY = {"query": "{ jobs(first: 5) { nodes { id } } }"}
#: Answered slowly by the sandbox, so it is in flight when SIGTERM arrives.
SLOW_QUERY = {"query": "{ jobs(first: 2) { nodes { id } } }"}
SLOW_SECONDS = 1.5


@dataclass(frozen=True)
class Outcome:
    """What one request got: `ok` (a complete answer), `refused` (at connect time), or
    `lost` (anything else: reset, cut short, timed out, a wrong answer)."""

    kind: str
    started: float
    seconds: float
    detail: str = ""


def _load(url: str, stop: threading.Event, outcomes: list[Outcome]) -> None:
    """One client: queries on a fresh connection each, until `stop` or its quota."""
    limits = httpx.Limits(max_keepalive_connections=0)
    timeout = httpx.Timeout(15, connect=5)
    with httpx.Client(timeout=timeout, limits=limits) as client:
        for _ in range(REQUESTS_PER_CLIENT):
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                response = client.post(url, json=QUERY, headers={"Connection": "close"})
                nodes = response.json()["data"]["jobs"]["nodes"]
                kind = "ok" if response.status_code == 200 and len(nodes) == 5 else "lost"
                outcomes.append(Outcome(kind, started, time.monotonic() - started, response.text))
            except httpx.ConnectError as exc:
                outcomes.append(Outcome("refused", started, time.monotonic() - started, repr(exc)))
                time.sleep(0.05)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                outcomes.append(Outcome("lost", started, time.monotonic() - started, repr(exc)))


def _send_slow_query(url: str, answers: list[httpx.Response | Exception]) -> None:
    try:
        answers.append(httpx.post(url, json=SLOW_QUERY, timeout=30))
    except httpx.HTTPError as exc:
        answers.append(exc)


@pytest.mark.parametrize("workers", [2, 1])
def test_sigterm_under_load_refuses_new_connections_and_answers_the_rest(
    workers: int, tmp_path: Path
) -> None:
    stop = threading.Event()
    outcomes: list[Outcome] = []
    clients: list[threading.Thread] = []
    slow: list[httpx.Response | Exception] = []
    with gateway_process(
        tmp_path,
        workers=workers,
        env={"GATEWAY_RATE_LIMIT": "0"},  # 32 clients from one address are not abuse here
    ) as running:
        url, process = running.url, running.process
        port = httpx.URL(url).port
        assert port is not None
        try:
            sandbox = re.search(r"(http://127\.0\.0\.1:\d+)/v1", running.stdout.read_text())
            assert sandbox, running.stdout.read_text()
            faults = f"{sandbox.group(1)}/_sandbox/faults"
            slow_fault = {
                "status": 200,
                "latency_ms": int(SLOW_SECONDS * 1000),
                "path": "/v1/ats/jobs",
                "match_params": {"page_size": "2"},
            }
            httpx.post(faults, json={"faults": [slow_fault]}).raise_for_status()
            slow_sender = threading.Thread(target=_send_slow_query, args=(f"{url}/graphql", slow))
            clients = [
                threading.Thread(target=_load, args=(f"{url}/graphql", stop, outcomes))
                for _ in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            # Under load (every worker serving), with the slow query in flight.
            wait_until(lambda: sum(o.kind == "ok" for o in outcomes) >= CLIENTS, 30, "load")
            slow_sender.start()
            # In flight: the gateway's call took the fault and waits on the sandbox.
            wait_until(lambda: not httpx.get(faults).json()["faults"], 10, "the slow query")

            sigterm = time.monotonic()
            process.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            # Well after SIGTERM: refused at once, not accepted and left hanging.
            with socket.socket() as probe:
                probe.settimeout(3)
                started = time.monotonic()
                try:
                    probe.connect(("127.0.0.1", port))
                    connected = True
                except ConnectionRefusedError:
                    connected = False
                assert not connected, "a connection was accepted 1.5 s after SIGTERM"
                assert time.monotonic() - started < 0.5
            stop.set()
            for client in clients:
                client.join(timeout=20)
            slow_sender.join(timeout=20)

            assert process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 10) == 0
            exited = time.monotonic() - sigterm
        finally:
            stop.set()

    lost = [o for o in outcomes if o.kind == "lost"]
    assert not lost, f"{len(lost)} of {len(outcomes)} requests lost: {lost[:5]}"
    assert all(not client.is_alive() for client in clients)
    # The request in flight drained; the load was real and then refused.
    assert len(slow) == 1 and isinstance(slow[0], httpx.Response), slow
    assert slow[0].status_code == 200 and len(slow[0].json()["data"]["jobs"]["nodes"]) == 2
    refused = [o for o in outcomes if o.kind == "refused"]
    assert refused, "no connection attempt was refused after SIGTERM"
    assert all(o.started + o.seconds >= sigterm for o in refused), "refused before SIGTERM"
    # Refused quickly: a connection attempt made while the workers took what the kernel
    # had queued is refused on its first retry (1 s later), never left hanging.
    assert max(o.seconds for o in refused) < 3.5, max(o.seconds for o in refused)
    assert exited < 10, f"took {exited:.1f} s to exit"
    # Every line the supervisor and its workers logged is JSON.
    for line in running.log().splitlines():
        assert isinstance(json.loads(line), dict), line
