"""`kombo-gateway serve | sandbox | schema | health | token` (also `python -m gateway`).

`serve` with no `KOMBO_API_KEY` starts the embedded sandbox as a child process on a
free loopback port and points the gateway at it over real HTTP, so `make run` needs
no key and behaves like production. Settings reach uvicorn's workers through the
environment (`gateway.app:app_from_env`), so `--workers N` works the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from gateway.config import (
    SANDBOX_API_KEY,
    SANDBOX_INTEGRATION_IDS,
    ConfigError,
    Settings,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SANDBOX_PORT = 8001
#: Longest a shutdown waits for requests in flight: one request's upstream deadline, and more.
GRACEFUL_SHUTDOWN_SECONDS = 30


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

    from gateway.sandbox.app import create_sandbox_app

    print(f"Kombo sandbox on http://{host}:{port}/v1 (KOMBO_BASE_URL=http://{host}:{port}/v1)")
    print(f"  API key:      {SANDBOX_API_KEY}")
    for integration in SANDBOX_INTEGRATION_IDS:
        print(f"  integration:  {integration}")
    sys.stdout.flush()
    uvicorn.run(create_sandbox_app(), host=host, port=port, log_level="warning")
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"kombo-gateway: {exc}", file=sys.stderr)
        return 2
    # uvicorn drains on SIGTERM, then re-raises it; turning it into SystemExit lets the
    # `with` below stop the sandbox instead of the process dying with it still running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as stack:
        if settings.sandbox_mode:
            sandbox_url = stack.enter_context(_sandbox_process())
            os.environ["KOMBO_API_KEY"] = SANDBOX_API_KEY
            os.environ["KOMBO_BASE_URL"] = sandbox_url
            os.environ.setdefault("KOMBO_INTEGRATION_ID", SANDBOX_INTEGRATION_IDS[0])
            print(
                "No KOMBO_API_KEY set: serving the embedded Kombo sandbox "
                f"({sandbox_url}, default integration {os.environ['KOMBO_INTEGRATION_ID']})."
            )
        else:
            print(f"Serving Kombo at {settings.base_url}.")
        print(f"GraphiQL: http://{host}:{port}/graphql")
        sys.stdout.flush()
        uvicorn.run(
            "gateway.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options(settings),
        )
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` sets in uvicorn besides the app, address and workers (the bench's
    proxy serves with the same, so the two stay comparable)."""
    return {
        "log_level": "info",
        # Each request gets one JSON log line from `observability`; uvicorn's own access
        # line would repeat it, unstructured, at a cost per request.
        "access_log": False,
        "timeout_keep_alive": round(settings.keepalive_timeout),
        # On SIGTERM/SIGINT: stop accepting, let requests in flight finish (drain).
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


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
