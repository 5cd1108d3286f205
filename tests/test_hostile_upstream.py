"""A hostile "Kombo" against the real gateway process, over real HTTP, as a worker runs.

Found by a probe before `KOMBO_MAX_RESPONSE_BYTES`: a 200 MB body took a worker to 1 GB,
an endless stream to 3 GB in 11 s, and a 510 KB gzip bomb to 2.5 GB with event-loop
stalls of 4.5 s, retried four times. Each answer here must end the query with
`UPSTREAM_ERROR` after exactly one upstream call, while the same worker keeps answering
`/healthz` promptly and its memory stays far below what the answer would have cost.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.http.serving import free_port, wait_until_healthy
from tests.support import status_bytes

#: Measures time and memory under load: `make test` runs it alone, after the rest.
pytestmark = pytest.mark.serial

INTEGRATION = "greenhouse:8mJ4sVvB3Ut3PqCbA9z7WkRn"
QUERY = "{ jobs(first: 5) { nodes { id } } }"
#: The gateway's default cap (`KOMBO_MAX_RESPONSE_BYTES`), which these tests leave as is.
CAP = 16 * 1024 * 1024
BLOCK = b"{" * 65536
#: Longest any one hostile answer is written for, whatever the client does.
WRITE_SECONDS = 20
#: Limits the assertions hold the worker to.
MAX_HEALTHZ_LATENCY = 1.0
MAX_PEAK_RSS = 300 * 1024 * 1024


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of zeros, gzipped (about 1000:1), never held uncompressed."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    zeros = bytes(1024 * 1024)
    packed = [packer.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join([*packed, packer.flush()])


class HostileKombo(socketserver.ThreadingTCPServer):
    """A loopback "Kombo" whose `GET /v1/ats/jobs` answers with `mode`; it counts those
    requests. Anything else gets a 404."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, bomb: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _HostileHandler)
        self.bomb = bomb
        self.mode = ""
        self.jobs_requests = 0
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def count(self) -> None:
        with self._lock:
            self.jobs_requests += 1


class _HostileHandler(socketserver.BaseRequestHandler):
    server: HostileKombo
    request: socket.socket

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            head = self._head()
            if head.split(b" ", 2)[1].startswith(b"/v1/ats/jobs"):
                self.server.count()
                self._hostile(self.server.mode)
            else:
                self._send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n", b"{}")
        except (OSError, IndexError):
            pass  # the gateway hung up (as it should), or sent no request at all

    def _head(self) -> bytes:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = self.request.recv(65536)
            if not data:
                raise OSError("no request")
            head += data
        return head

    def _send(self, head: bytes, body: bytes = b"") -> None:
        self.request.sendall(head + b"Connection: close\r\n\r\n" + body)

    def _hostile(self, mode: str) -> None:
        json_type = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if mode == "gzip-bomb":
            length = b"Content-Length: %d\r\n" % len(self.server.bomb)
            self._send(json_type + b"Content-Encoding: gzip\r\n" + length, self.server.bomb)
        elif mode == "declared-200MB":
            self._send(json_type + b"Content-Length: %d\r\n" % (200 << 20))
            self._stream(200 << 20, chunked=False)
        elif mode == "streamed-200MB":  # no length: the body ends with the connection
            self._send(json_type)
            self._stream(200 << 20, chunked=False)
        elif mode == "endless-chunked":
            self._send(json_type + b"Transfer-Encoding: chunked\r\n")
            self._stream(None, chunked=True)

    def _stream(self, total: int | None, *, chunked: bool) -> None:
        """Write `total` bytes (None: without end) until the gateway hangs up, for at most
        `WRITE_SECONDS`; generated block by block, never held whole."""
        block = b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK) if chunked else BLOCK
        deadline, sent = time.monotonic() + WRITE_SECONDS, 0
        while (total is None or sent < total) and time.monotonic() < deadline:
            self.request.sendall(block)  # OSError once the gateway has closed
            sent += len(BLOCK)


@dataclass
class Monitor:
    """Pings the gateway's `/healthz` without pause and samples its RSS, in a thread."""

    port: int
    pid: int
    longest: float = 0.0
    peak_rss: int = 0
    pings: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.longest, self.peak_rss, self.pings = 0.0, 0, 0

    def run(self) -> None:
        deadline = time.monotonic() + 300  # bounded even if never stopped
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak_rss = max(self.peak_rss, status_bytes(self.pid, "VmRSS"))
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            started = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                status = connection.getresponse().status
                if status != 200:
                    self.failures.append(f"/healthz answered {status}")
            except OSError as exc:
                self.failures.append(f"/healthz failed: {exc!r}")
            finally:
                connection.close()
            self.longest = max(self.longest, time.perf_counter() - started)
            self.pings += 1
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Running:
    url: str
    process: subprocess.Popen[bytes]
    hostile: HostileKombo
    monitor: Monitor


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the gateway's memory from /proc")
    hostile = HostileKombo(gzip_bomb(512 * 1024 * 1024))
    threading.Thread(target=hostile.serve_forever, kwargs={"poll_interval": 0.1}).start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOMBO_", "GATEWAY_"))}
    env |= {
        "KOMBO_API_KEY": "hostile-test-key",
        "KOMBO_BASE_URL": f"http://127.0.0.1:{hostile.port}/v1",
        "KOMBO_INTEGRATION_ID": INTEGRATION,
        "GATEWAY_CACHE_TTL": "0",
        "GATEWAY_RATE_LIMIT": "0",
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        monitor = Monitor(port, process.pid)
        pinger = threading.Thread(target=monitor.run)
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)
            pinger.start()
            yield Running(f"http://127.0.0.1:{port}", process, hostile, monitor)
        finally:
            monitor.stop()
            if pinger.is_alive():
                pinger.join(timeout=15)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            hostile.shutdown()
            hostile.server_close()


def graphql(url: str, query: str) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
    try:
        body = json.dumps({"query": query})
        connection.request("POST", "/graphql", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    "mode", ["declared-200MB", "streamed-200MB", "endless-chunked", "gzip-bomb"]
)
def test_a_hostile_answer_is_an_upstream_error_that_costs_the_worker_little(
    running: Running, mode: str
) -> None:
    running.hostile.mode = mode
    running.hostile.jobs_requests = 0
    baseline = status_bytes(running.process.pid, "VmRSS")
    running.monitor.reset()
    started = time.monotonic()

    status, answer = graphql(running.url, QUERY)

    elapsed = time.monotonic() - started
    time.sleep(0.3)  # the monitor sees the worker after the answer too
    monitor = running.monitor
    print(
        f"\n{mode}: answered in {elapsed:.2f} s; RSS {baseline >> 20} MB before, peak "
        f"{monitor.peak_rss >> 20} MB (VmHWM {status_bytes(running.process.pid, 'VmHWM') >> 20}"
        f" MB); longest /healthz {monitor.longest * 1000:.0f} ms over {monitor.pings} pings"
    )
    assert status == 200
    assert (answer.get("data") or {}).get("jobs") is None
    assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [
        (["jobs"], "UPSTREAM_ERROR")
    ], answer
    assert running.hostile.jobs_requests == 1  # not retried
    assert monitor.failures == []
    assert monitor.pings >= 5
    assert monitor.longest < MAX_HEALTHZ_LATENCY
    # The worker's peak over its whole life so far, every hostile answer included.
    assert 0 < status_bytes(running.process.pid, "VmHWM") < MAX_PEAK_RSS
