"""`kombo-gateway serve | sandbox | schema | health | token` (also `python -m gateway`).

`serve` with no `KOMBO_API_KEY` (and no pass-through of callers' keys to a configured
Kombo) starts the embedded sandbox as a child process on a free loopback port and
points the gateway at it over real HTTP, so `make run` needs no key and behaves like
production. Settings reach uvicorn's workers through the environment
(`gateway.app:app_from_env`), so `--workers N` works the same way.

Every process logs JSON lines on stderr, uvicorn's own records included (a client can
provoke some, e.g. "Invalid HTTP request received."), so log shippers parse them all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx

from gateway.config import (
    SANDBOX_API_KEY,
    SANDBOX_INTEGRATION_IDS,
    ConfigError,
    Settings,
)

if TYPE_CHECKING:
    import uvicorn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SANDBOX_PORT = 8001
#: Longest a shutdown waits for requests in flight: one request's upstream deadline, and more.
GRACEFUL_SHUTDOWN_SECONDS = 30
#: `serve`'s exit status when the app failed to start (uvicorn's).
STARTUP_FAILURE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "schema":
        return _schema(federation=args.federation)
    if args.command == "sandbox":
        return _sandbox(args.host, args.port)
    if args.command == "health":
        return _health(args.url)
    if args.command == "token":
        return _token(args.name, args.integration, args.default)
    return _serve(args.host, args.port, args.workers)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kombo-gateway", description="GraphQL gateway over Kombo's ATS jobs API."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway (on the sandbox without a key)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=_positive_int, default=1)
    sandbox = commands.add_parser("sandbox", help="run only the Kombo-compatible sandbox")
    sandbox.add_argument("--host", default=DEFAULT_HOST)
    sandbox.add_argument("--port", type=int, default=DEFAULT_SANDBOX_PORT)
    schema = commands.add_parser("schema", help="print the SDL")
    schema.add_argument(
        "--federation", action="store_true", help="print the Federation 2 subgraph SDL"
    )
    health = commands.add_parser(
        "health", help="exit 0 when a running gateway answers its health check (for containers)"
    )
    health.add_argument("--url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/healthz")
    token = commands.add_parser(
        "token", help="make a gateway access token and its GATEWAY_TOKENS entry"
    )
    token.add_argument("--name", required=True, help="who the token is for (shown in logs)")
    token.add_argument(
        "--integration",
        action="append",
        default=[],
        help="an integration it may use (repeat; none: all integrations)",
    )
    token.add_argument("--default", help="the integration used when a request names none")
    return parser


def _token(name: str, integrations: list[str], default: str | None) -> int:
    """Print a new token (shown once, never stored) and the entry that configures it."""
    from gateway.access import hash_token, new_token

    if default is not None and integrations and default not in integrations:
        print("kombo-gateway: --default must be one of --integration", file=sys.stderr)
        return 2
    token = new_token()
    entry: dict[str, object] = {
        "name": name,
        "sha256": hash_token(token),
        "integrations": integrations or "*",
    }
    if default is not None:
        entry["default_integration"] = default
    print(f"token (give it to {name}; it is not stored anywhere): {token}")
    print("GATEWAY_TOKENS entry:", json.dumps(entry))
    return 0


def _health(url: str) -> int:
    try:
        healthy = httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        healthy = False
    print("healthy" if healthy else f"unhealthy: {url}")
    return 0 if healthy else 1


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _schema(*, federation: bool) -> int:
    from gateway.schema import client_sdl, subgraph_sdl

    sys.stdout.write(subgraph_sdl() if federation else client_sdl())
    return 0


def _sandbox(host: str, port: int) -> int:
    import uvicorn

    from gateway.observability import configure_logging
    from gateway.sandbox.app import create_sandbox_app

    print(f"Kombo sandbox on http://{host}:{port}/v1 (KOMBO_BASE_URL=http://{host}:{port}/v1)")
    print(f"  API key:      {SANDBOX_API_KEY}")
    for integration in SANDBOX_INTEGRATION_IDS:
        print(f"  integration:  {integration}")
    sys.stdout.flush()
    # JSON like the gateway's: `serve` runs the sandbox with the gateway's stderr.
    configure_logging("WARNING")
    uvicorn.run(
        create_sandbox_app(),
        host=host,
        port=port,
        log_level="warning",
        log_config=uvicorn_log_config(),
    )
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    from gateway.observability import configure_logging

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"kombo-gateway: {exc}", file=sys.stderr)
        return 2
    # Before uvicorn logs anything: its records reach the root logger's JSON handler.
    configure_logging(settings.log_level)
    # uvicorn drains on SIGTERM, then re-raises it; turning it into SystemExit lets the
    # `with` below stop the sandbox instead of the process dying with it still running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as stack:
        if needs_embedded_sandbox(settings, os.environ):
            sandbox_url = stack.enter_context(_sandbox_process())
            os.environ["KOMBO_API_KEY"] = SANDBOX_API_KEY
            os.environ["KOMBO_BASE_URL"] = sandbox_url
            os.environ.setdefault("KOMBO_INTEGRATION_ID", SANDBOX_INTEGRATION_IDS[0])
            print(
                "No KOMBO_API_KEY set: serving the embedded Kombo sandbox "
                f"({sandbox_url}, default integration {os.environ['KOMBO_INTEGRATION_ID']})."
            )
        elif settings.api_key is None:
            print(
                f"Serving Kombo at {settings.base_url} with each caller's own key (pass-through)."
            )
        else:
            print(f"Serving Kombo at {settings.base_url}.")
        print(f"GraphiQL: http://{host}:{port}/graphql")
        sys.stdout.flush()
        options: dict[str, Any] = {
            "factory": True,
            "host": host,
            "port": port,
            "workers": workers,
            "log_config": uvicorn_log_config(),
            **uvicorn_options(settings),
        }
        config = uvicorn.Config("gateway.app:app_from_env", **options)
        if workers > 1:
            _supervise(config)
        elif not _serve_in_process(config):
            return STARTUP_FAILURE
    return 0


def needs_embedded_sandbox(settings: Settings, environ: Mapping[str, str]) -> bool:
    """True when there is no Kombo to call: no `KOMBO_API_KEY`, and not pass-through to
    an upstream named by `KOMBO_BASE_URL` or `KOMBO_REGION`.

    Pass-through needs no server key (every caller brings its own), so with an upstream
    configured it must reach that upstream; with none, `make run` style start-ups (a
    developer trying pass-through) get the sandbox, whose key callers then send.
    """
    if settings.api_key is not None:
        return False
    upstream_named = any(
        environ.get(name, "").strip() for name in ("KOMBO_BASE_URL", "KOMBO_REGION")
    )
    return not (settings.key_passthrough and upstream_named)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` sets in uvicorn besides the app, address and workers (the bench's
    proxy serves with the same, so the two stay comparable)."""
    from gateway.http_protocol import HeaderTimeoutProtocol  # imports uvicorn: only to serve

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


def _serve_in_process(config: uvicorn.Config) -> bool:
    """Serve `config` in this process (`--workers 1`); False when the app did not start.

    uvicorn's own server, except that on SIGTERM/SIGINT it keeps serving until the
    connections the kernel had queued are accepted (new ones dropped meanwhile), and
    their requests read: the queue must have stayed empty for two ticks (0.1 s each).
    """
    import uvicorn

    sock = _bind(config)

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
    # becomes `_exit_on_sigterm`'s SystemExit), which must not print a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])  # closes `sock` when it stops
    return server.started


def _supervise(config: uvicorn.Config) -> None:
    """Run `config.workers` worker processes under uvicorn's supervisor, stopping them
    without losing a connection.

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

    sockets = [_bind(config)]
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


def _bind(config: uvicorn.Config) -> socket.socket:
    """uvicorn's listening socket for `config`, with `TCP_NODELAY`, which the connections
    it accepts inherit (on Linux).

    uvicorn binds it without saying it is TCP, so the event loop does not set
    `TCP_NODELAY` on what it accepts: a response written in two parts (headers, then
    body) then waits for the client's delayed ACK, some 40 ms.
    """
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


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


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def _sandbox_process() -> Iterator[str]:
    """Run the sandbox as a child process on a free loopback port until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sandbox", "--host", DEFAULT_HOST, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://{DEFAULT_HOST}:{port}"
    try:
        wait_until_healthy(url + "/healthz", process)
        yield url + "/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((DEFAULT_HOST, 0))
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
