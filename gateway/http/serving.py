"""How `serve` runs: the listening socket, uvicorn in this process or under its
supervisor, the sandbox child, and stopping all of it without losing a connection.

    listen, listen_problem          bind and listen before anything starts
    uvicorn_options,                what uvicorn is told besides the app (the bench's
      uvicorn_log_config            proxy uses the same); its records as JSON lines
    serve_in_process, supervise     one worker, or many under uvicorn's supervisor
    stop_listening,                 the drain: drop new connection attempts, let the
      refuse_new_connections,       queued ones be accepted, then close
      accept_queue_length
    serving_app                     the app factory uvicorn imports in each serving process
    sandbox_process, watch_parent   children that die with the gateway
    free_port, wait_until_healthy   also used by the tests and the bench

`gateway.cli` decides what to serve and says so; this module is the process and
socket machinery under it, kept apart because each of its jobs is subtle and easy
to break from a command's code:

- Binding before anything starts: `listen` claims the port before the sandbox or any
  worker exists, so a port that is taken fails at once, not after GraphiQL's URL was
  printed and children were started.
- Draining without losing connections: uvicorn's own stop resets every connection
  the kernel had queued but not yet handed over; here a stop first drops new
  connection attempts, lets the queue be accepted, and only then closes the socket.
- Children that die with the gateway: the sandbox and every worker stop when `serve`
  dies, even by SIGKILL (`watch_parent`), so none outlives it holding a port.

Every process logs JSON lines on stderr, uvicorn's own records included (a client can
provoke some, e.g. "Invalid HTTP request received."), so log shippers parse them all.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

    from gateway.config import Settings

#: Where `serve`'s sandbox listens, and where `free_port` finds a port.
LOOPBACK = "127.0.0.1"
#: Longest a shutdown waits for requests in flight: one request's upstream deadline, and more.
GRACEFUL_SHUTDOWN_SECONDS = 30


def listen(host: str, port: int) -> socket.socket:
    """The gateway's listening socket (what uvicorn's `Config.bind_socket` makes, and
    listening already), with `TCP_NODELAY`, which the connections it accepts inherit
    (on Linux).

    Listening at once, before the sandbox or any worker starts, claims the port: a
    second gateway on it fails here, even one that got as far as binding it too
    (`SO_REUSEADDR` lets two bind a port; only one can listen). uvicorn binds without
    saying the socket is TCP, so the event loop would not set `TCP_NODELAY` on what it
    accepts: a response written in two parts (headers, then body) then waits for the
    client's delayed ACK, some 40 ms.

    Raises:
        OSError: the address is taken, not this machine's, or not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)  # the workers accept on it
    return sock


#: uvicorn's default backlog (`--backlog`), which its server sets again on `sock`.
_BACKLOG = 2048


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """Why `serve` cannot listen on `host`:`port`, in words an operator acts on."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {address}: the address is already in use (another process "
            "listens on it); stop it or choose another --port or GATEWAY_PORT"
        )
    if exc.errno == errno.EACCES:
        return f"cannot listen on {address}: permission denied (ports below 1024 need privileges)"
    return f"cannot listen on {address}: {reason}"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` sets in uvicorn besides the app, address and workers (the bench's
    proxy serves with the same, so the two stay comparable)."""
    from gateway.http.http_protocol import HeaderTimeoutProtocol  # imports uvicorn: only to serve

    return {
        "log_level": "info",
        # Each request gets one JSON log line from `observability`; uvicorn's own access
        # line would repeat it, unstructured, at a cost per request.
        "access_log": False,
        "timeout_keep_alive": round(settings.keepalive_timeout),
        # On SIGTERM/SIGINT: stop accepting, let requests in flight finish (drain).
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        # Closes connections whose request headers are late (GATEWAY_HEADER_TIMEOUT).
        "http": HeaderTimeoutProtocol,
    }


class _WithoutColorMessage(logging.Filter):
    """Drops the `color_message` uvicorn attaches to some records (the same text with
    ANSI colour codes), which the JSON formatter would otherwise log as one more field."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's `log_config`: its loggers get no handler of their own and propagate to
    the root logger, where `observability.configure_logging` writes JSON lines.

    uvicorn's default config prints plain text ("WARNING:  Invalid HTTP request
    received.") that a client can provoke and a log shipper cannot parse. Each process
    must call `configure_logging` before uvicorn logs: `serve` and `sandbox` do, and a
    worker does in `app_from_env`, which uvicorn calls before its first record.
    """
    plain = {"handlers": [], "propagate": True, "filters": ["without_color_message"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"without_color_message": {"()": f"{__name__}._WithoutColorMessage"}},
        "loggers": {name: dict(plain) for name in _UVICORN_LOGGERS},
    }


_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


# --- stopping without losing connections -----------------------------------------------
#
# On SIGTERM/SIGINT uvicorn closes its listening socket, then drains. Closing resets every
# connection the kernel had completed but the server not yet accepted: under load dozens,
# whose clients had sent their request (tests/test_shutdown.py lost 24-31 requests per
# stop, with one worker or two). So a stop first drops new connection attempts with a
# socket filter (Linux; their clients retry after 1 s and are refused then, as the socket
# is gone), lets the server accept what is queued, and only then closes the socket.

#: Longest a stop waits for the connections already queued to be accepted.
ACCEPT_QUEUE_DRAIN_SECONDS = 1.0
#: Time the workers get to read the requests on the connections they accepted last:
#: uvicorn's shutdown closes a connection that has not yet delivered a request.
_SETTLE_SECONDS = 0.2
_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # Linux's value
#: Where `struct tcp_info` keeps `tcpi_unacked`, after eight u8 fields and four u32.
_TCPI_UNACKED_OFFSET = 24


def serve_in_process(config: uvicorn.Config, sock: socket.socket) -> bool:
    """Serve `config` in this process (`--workers 1`); False when the app did not start.

    uvicorn's own server, except that on SIGTERM/SIGINT it keeps serving until the
    connections the kernel had queued are accepted (new ones dropped meanwhile), and
    their requests read: the queue must have stayed empty for two ticks (0.1 s each).
    """
    import uvicorn

    class Server(uvicorn.Server):
        drain_until: float | None = None
        empty_ticks = 0

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.drain_until is None:
                drain = ACCEPT_QUEUE_DRAIN_SECONDS if refuse_new_connections(sock) else 0.0
                self.drain_until = time.monotonic() + drain
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            should_exit = await super().on_tick(counter)
            if should_exit and self.drain_until is not None and not self.force_exit:
                self.empty_ticks = self.empty_ticks + 1 if accept_queue_length(sock) == 0 else 0
                if self.empty_ticks < 2 and time.monotonic() < self.drain_until:
                    return False
            return should_exit

    server = Server(config)
    # uvicorn re-raises the signal it stopped for: SIGINT as KeyboardInterrupt (SIGTERM
    # becomes `exit_on_sigterm`'s SystemExit), which must not print a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])  # closes `sock` when it stops
    return server.started


def supervise(config: uvicorn.Config, sock: socket.socket) -> None:
    """Run `config.workers` worker processes under uvicorn's supervisor, accepting on
    listening `sock`, and stop them without losing a connection.

    The supervisor binds one listening socket that every worker accepts on. On SIGTERM
    it only signals the workers (after up to half a second); each worker closes its copy
    of the socket, but the supervisor keeps its own open until every worker has drained.
    Meanwhile the kernel still completes connections on the socket, nobody accepts them,
    and they are reset when the supervisor exits (up to `GRACEFUL_SHUTDOWN_SECONDS`
    later): every client that connected during the drain lost its request. Here a
    signal first stops the socket itself, in every process at once (`stop_listening`),
    and only then tells the workers to drain and exit.
    """
    from uvicorn.supervisors import Multiprocess

    sockets = [sock]
    supervisor = Multiprocess(config, sockets=sockets)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:  # a second signal while stopping changes nothing
            stopping = True
            stop_listening(sockets)
            time.sleep(_SETTLE_SECONDS)
            supervisor.should_exit.set()

    # Replaces the supervisor's handlers, which only queue the signal for its loop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    supervisor.run()


def stop_listening(sockets: Sequence[socket.socket]) -> None:
    """Stop `sockets` listening in every process that shares them, without resetting a
    connection the kernel has already completed.

    `close` only drops this process's reference: the socket listens on while a worker
    holds it. `shutdown` stops the socket itself, in every process, and new connections
    are refused at once; but it resets those waiting in the accept queue. So new
    attempts are dropped first, and the workers (still accepting) empty the queue.
    """
    for sock in sockets:
        if refuse_new_connections(sock):
            deadline = time.monotonic() + ACCEPT_QUEUE_DRAIN_SECONDS
            while accept_queue_length(sock) and time.monotonic() < deadline:
                time.sleep(0.005)
    for sock in sockets:
        with contextlib.suppress(OSError):  # not listening (yet), or already shut down
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def refuse_new_connections(sock: socket.socket) -> bool:
    """Drop every packet that reaches listening `sock`, so no new connection completes
    (the SYN is dropped; connections already queued stay acceptable); False where that
    is not supported. A classic BPF program of one instruction: `ret #0`."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import struct

    drop = (ctypes.c_uint8 * 8).from_buffer_copy(struct.pack("HBBI", 0x06, 0, 0, 0))
    program = struct.pack("HP", 1, ctypes.addressof(drop))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
    except OSError:
        return False
    return True


def accept_queue_length(sock: socket.socket) -> int:
    """Connections completed on listening `sock` and not yet accepted (Linux reports it
    as `tcpi_unacked`); 0 when it cannot be read."""
    import struct

    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except (OSError, AttributeError):
        return 0
    length: int = struct.unpack_from("I", info, _TCPI_UNACKED_OFFSET)[0]
    return length


def exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM's handler in `serve`: uvicorn drains, then re-raises the signal, and as
    SystemExit it unwinds `serve`'s `with` blocks (stopping the sandbox) instead of
    killing the process with its children still running."""
    raise SystemExit(0)


def serving_app() -> Starlette:
    """`serve`'s app factory (uvicorn's `--factory`), called in each process that
    serves: `serve` itself with one worker, else every worker process, which then also
    stops when `serve` dies (see `watch_parent`), so no worker outlives it holding
    the port."""
    from multiprocessing import parent_process

    from gateway.http.app import app_from_env

    supervisor = parent_process()  # None in `serve` itself
    if supervisor is not None and supervisor.pid is not None:
        watch_parent(supervisor.pid, supervisor.sentinel)
    return app_from_env()


@contextlib.contextmanager
def sandbox_process(environment: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run the sandbox as a child process on a free loopback port until the block ends;
    `environment`: variables it gets on top of this process's (its webhook settings).

    The child also ends when this process dies without ending the block (SIGKILL, a
    crash): see `watch_parent`. Its stdin is a pipe whose write end only this process
    holds (subprocess pipes are close-on-exec, and `Popen` closes other descriptors), so
    the child reads EOF exactly when this process is gone.
    """
    port = free_port()
    command = [sys.executable, "-m", "gateway", "sandbox", "--host", LOOPBACK]
    command += ["--port", str(port), "--watch-parent", str(os.getpid())]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(environment or {})},
    )
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_until_healthy(url + "/healthz", process)
        yield url + "/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdin is not None:
            process.stdin.close()


#: Linux's `PR_SET_PDEATHSIG` (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
#: How long a sandbox whose gateway is gone gets to stop cleanly before it is ended.
_ORPHAN_GRACE_SECONDS = 5.0


def watch_parent(parent: int, pipe: int = 0) -> None:
    """Stop this process (`serve`'s sandbox, or one of its workers) when process
    `parent` dies, however it dies.

    A child that outlives `serve` serves on, holding its port, with nobody to stop it.
    Two ways to notice, as either can be missing: on Linux the kernel sends SIGTERM
    when the parent dies (`PR_SET_PDEATHSIG`); everywhere, `pipe` (the sandbox's stdin,
    a worker's multiprocessing sentinel: pipes only the parent writes to) reaches EOF.
    SIGTERM is the ordinary graceful stop; one that does not finish is cut short.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the kernel was asked to tell us
        raise SystemExit(f"kombo-gateway: process {parent}, which started this one, has exited")

    def stop_at_eof() -> None:
        with contextlib.suppress(OSError):
            while os.read(pipe, 4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_ORPHAN_GRACE_SECONDS)
        os._exit(1)

    threading.Thread(target=stop_at_eof, name="watch-parent", daemon=True).start()


def free_port() -> int:
    """A loopback port nothing listens on now, for a child (or a test) to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll `url` until it answers 200; fail early if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with code {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the sandbox did not become healthy within {timeout:g} s")
