"""Test helpers: real servers on free loopback ports, a GraphQL client, the sandbox's call log."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp


class LiveServer:
    """Serves an ASGI app with uvicorn on a background thread, on a free loopback port.

    Usage::

        with LiveServer(create_sandbox_app()) as sandbox:
            httpx.get(sandbox.base_url + "/ats/jobs", headers=...)
    """

    def __init__(
        self, app: ASGIApp, *, lifespan: str = "off", host: str = "127.0.0.1", **options: Any
    ) -> None:
        self.host = host
        #: More `uvicorn.Config` options (e.g. `http=` a protocol class).
        self.options = options
        self.port = 0
        self.app = app
        self.lifespan = lifespan
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. `http://127.0.0.1:54321` (control routes live here)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to use as `KOMBO_BASE_URL`."""
        return self.url + "/v1"

    def start(self, timeout: float = 10.0) -> None:
        """Bind first (so the port is known and free), then serve until `stop()`."""
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says
        # TCP, and without it every small response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan=self.lifespan, access_log=False, **self.options
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the test server did not start on {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serve(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Serve `app` (lifespan on) on a free loopback port in a thread; yields its base URL."""
    with LiveServer(app, lifespan="on", **options) as server:
        yield server.url


class ManualClock:
    """A clock (`time.monotonic`'s stand-in) that a test moves by hand: `clock.now += 1`."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Upstream:
    """The sandbox's log of the Kombo requests it received (what the gateway sent)."""

    sandbox_url: str

    def reset(self) -> None:
        httpx.delete(f"{self.sandbox_url}/_sandbox/requests").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.sandbox_url}/_sandbox/requests")
        response.raise_for_status()
        requests: list[dict[str, Any]] = response.json()["requests"]
        return requests

    def count(self) -> int:
        return len(self.requests())


@dataclass
class GraphQLClient:
    """Posts GraphQL requests to a running gateway."""

    url: str

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return httpx.post(f"{self.url}/graphql", json=body, headers=headers, timeout=30)

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The response body; fails the test on a non-JSON or 5xx answer."""
        response = self.post(query, variables, headers)
        assert response.status_code < 500, response.text
        result: dict[str, Any] = response.json()
        return result

    def data(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The response's `data`, asserting there were no errors."""
        result = self.execute(query, variables, headers)
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data


def error_codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors", [])]


def fanning_fragments(levels: int) -> str:
    """A document whose fragments each spread the previous one twice: 2^levels fields in
    about 40 bytes a level (~850 bytes at 21 levels)."""
    fragments = ["fragment F0 on Job { id name }"]
    fragments += [f"fragment F{i} on Job {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return f"{{ jobs(first: 1) {{ nodes {{ ...F{levels - 1} }} }} }} " + " ".join(fragments)


def fragment_chain(length: int) -> str:
    """A document with a linear chain of `length` fragments, each spreading the next."""
    fragments = ["fragment F0 on Job { id }"]
    fragments += [f"fragment F{i} on Job {{ ...F{i - 1} }}" for i in range(1, length)]
    return f"{{ jobs(first: 1) {{ nodes {{ ...F{length - 1} }} }} }} " + " ".join(fragments)


@dataclass
class GatewayProcess:
    """`kombo-gateway serve` running as a process of its own (see `gateway_process`)."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def workers(self) -> list[int]:
        """The PIDs of its worker processes (uvicorn's spawned children; not the
        embedded sandbox)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children if b"spawn_main" in _cmdline(int(child))]

    def log(self) -> str:
        return self.stderr.read_text()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def gateway_process(
    directory: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
) -> Iterator[GatewayProcess]:
    """Start `python -m gateway serve --workers N` on a free port (the embedded sandbox,
    no KOMBO_/GATEWAY_ variables of the test run but `env`, none named in `unset`), wait
    until every worker has started; stop the whole process group afterwards."""
    from gateway.http.serving import free_port

    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KOMBO_", "GATEWAY_")) and k not in unset
    }
    environ.update(env or {})
    out, err = directory / "stdout", directory / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--workers", str(workers)]
            + ["--port", str(port)],
            env=environ,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own group: a failed test can stop every process
        )
    running = GatewayProcess(process, f"http://127.0.0.1:{port}", out, err)
    try:
        wait_until(
            lambda: (
                running.log().count("Application startup complete") >= workers
                or process.poll() is not None
            ),
            60,
            "every worker to start",
        )
        assert process.poll() is None, running.log()
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def status_bytes(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM) in bytes; 0 once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    return 0
