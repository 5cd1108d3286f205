"""Shared fixtures: one sandbox and one gateway per test session, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
from gateway.http.app import create_app
from gateway.sandbox.app import create_sandbox_app
from tests.support import GraphQLClient, LiveServer, Upstream, serve

INTEGRATION_A, INTEGRATION_B = SANDBOX_INTEGRATION_IDS


@pytest.fixture(scope="session")
def sandbox() -> Iterator[LiveServer]:
    """The Kombo sandbox (uvicorn on a free 127.0.0.1 port, in a background thread), one for
    the session: the shared gateway calls it, and the sandbox's own tests read it. Its
    request log and faults are reset by the tests that use them (`upstream`, `faults`);
    its rate-limit windows count every test's calls."""
    with LiveServer(create_sandbox_app(), lifespan="on") as server:
        yield server


@pytest.fixture(scope="session")
def sandbox_url(sandbox: LiveServer) -> str:
    """The sandbox's root URL (control routes live here; Kombo's API under `/v1`)."""
    return sandbox.url


@pytest.fixture(scope="session")
def gateway_settings(sandbox_url: str) -> Settings:
    return Settings(
        api_key=SANDBOX_API_KEY,
        base_url=f"{sandbox_url}/v1",
        integration_id=INTEGRATION_A,
        cache_ttl=0,
        # Short, so that a persistent fault ends a test in seconds (retries stop at it).
        request_timeout=3.0,
        # Tests fire requests faster than people; rate limiting has tests of its own.
        rate_limit=0,
    )


@pytest.fixture(scope="session")
def gateway_url(gateway_settings: Settings) -> Iterator[str]:
    with serve(create_app(gateway_settings)) as url:
        yield url


@pytest.fixture
def gql(gateway_url: str) -> GraphQLClient:
    return GraphQLClient(gateway_url)


@pytest.fixture
def upstream(sandbox_url: str) -> Upstream:
    """The sandbox's request log, emptied for this test."""
    log = Upstream(sandbox_url)
    log.reset()
    return log


@pytest.fixture
def faults(upstream: Upstream) -> Iterator[Callable[..., None]]:
    """Queues faults (error answers, latency, dropped connections) in the sandbox;
    cleared after the test."""

    def queue(*faults: dict[str, Any]) -> None:
        httpx.post(
            f"{upstream.sandbox_url}/_sandbox/faults", json={"faults": list(faults)}
        ).raise_for_status()

    yield queue
    httpx.delete(f"{upstream.sandbox_url}/_sandbox/faults").raise_for_status()
