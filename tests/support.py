"""Test helpers: real servers on free loopback ports, a GraphQL client, the sandbox's call log."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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
