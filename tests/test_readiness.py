"""`/readyz` over real HTTP: unauthenticated, so however many probes arrive they cost
Kombo at most one call per `ReadinessProbe.TTL`, and never a connection a query needs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.config import SANDBOX_API_KEY, Settings
from gateway.http.access import KOMBO_KEY_HEADER
from gateway.http.app import create_app
from gateway.http.serving import free_port
from gateway.http.state import ReadinessProbe
from tests.support import Upstream, error_codes, serve

#: Bounds how long things take: `make test` runs it alone, after the rest.
pytestmark = pytest.mark.serial

CHECK_PATH = "/v1/check-api-key"
QUERY = {"query": "{ jobs(first: 1) { nodes { komboId } } }"}


def checks(upstream: Upstream) -> list[dict[str, Any]]:
    """The readiness checks the sandbox received."""
    return [request for request in upstream.requests() if request["path"] == CHECK_PATH]


async def probe_all(url: str, count: int) -> list[httpx.Response]:
    """`count` concurrent `/readyz` requests, each on a connection of its own."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(*(client.get(f"{url}/readyz") for _ in range(count)))


async def test_concurrent_probes_cost_kombo_one_check(
    gateway_settings: Settings, upstream: Upstream, faults: Callable[..., None]
) -> None:
    # A slow check: every probe arrives while it is in flight.
    faults({"status": 200, "latency_ms": 500, "path": CHECK_PATH})
    with serve(create_app(gateway_settings)) as url:
        first = await probe_all(url, 200)
        again = await probe_all(url, 50)  # within the TTL: answered from the last check
    assert [r.status_code for r in first + again] == [200] * 250
    assert {r.json()["status"] for r in first + again} == {"ready"}
    assert len(checks(upstream)) == 1


async def test_probes_during_a_slow_check_get_the_last_answer_at_once(
    gateway_settings: Settings,
    upstream: Upstream,
    faults: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ReadinessProbe, "TTL", 0.5)
    with serve(create_app(gateway_settings)) as url:
        assert (await probe_all(url, 1))[0].json() == {"status": "ready"}
        await asyncio.sleep(0.6)  # the answer is stale: the next probe checks again
        faults({"status": 200, "latency_ms": 2000, "path": CHECK_PATH})
        async with httpx.AsyncClient(timeout=30) as client:
            refresh = asyncio.create_task(client.get(f"{url}/readyz"))
            await asyncio.sleep(0.3)  # that check is in flight now
            started = time.monotonic()
            meanwhile = await probe_all(url, 50)
            waited = time.monotonic() - started
            assert (await refresh).json() == {"status": "ready"}
    assert waited < 1.0, f"probes waited {waited:.2f} s for the check in flight"
    assert {r.json()["status"] for r in meanwhile} == {"ready"}
    assert len(checks(upstream)) == 2


async def test_probes_never_take_a_connection_a_query_needs(
    gateway_settings: Settings, faults: Callable[..., None]
) -> None:
    settings = dataclasses.replace(gateway_settings, max_connections=1)
    faults({"status": 200, "latency_ms": 3000, "path": CHECK_PATH})
    with serve(create_app(settings)) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            probes = asyncio.gather(*(client.get(f"{url}/readyz") for _ in range(50)))
            await asyncio.sleep(0.3)  # the check holds its connection for 3 s
            started = time.monotonic()
            answer = await client.post(f"{url}/graphql", json=QUERY)
            took = time.monotonic() - started
            assert {r.status_code for r in await probes} == {200}
    assert answer.status_code == 200 and len(answer.json()["data"]["jobs"]["nodes"]) == 1
    assert took < 1.5, f"the query waited {took:.2f} s behind the readiness check"


async def test_pass_through_without_a_key_is_ready_when_kombo_answers(
    gateway_settings: Settings, upstream: Upstream
) -> None:
    """No key of ours to check: Kombo answering at all (its 401 to a keyless call) is
    ready, while each caller's own key still reaches Kombo on their queries."""
    settings = dataclasses.replace(gateway_settings, api_key=None, key_passthrough=True)
    with serve(create_app(settings)) as url:
        ready = (await probe_all(url, 1))[0]
        async with httpx.AsyncClient(timeout=30) as client:
            own_key = await client.post(
                f"{url}/graphql", json=QUERY, headers={KOMBO_KEY_HEADER: SANDBOX_API_KEY}
            )
            no_key = await client.post(f"{url}/graphql", json=QUERY)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert [check["status"] for check in checks(upstream)] == [401]
    assert len(own_key.json()["data"]["jobs"]["nodes"]) == 1
    assert error_codes(no_key.json()) == ["UNAUTHENTICATED"]


async def test_pass_through_without_a_key_is_not_ready_when_kombo_is_unreachable(
    gateway_settings: Settings,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    settings = dataclasses.replace(
        gateway_settings, api_key=None, key_passthrough=True, base_url=closed
    )
    with serve(create_app(settings)) as url:
        answer = (await probe_all(url, 1))[0]
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not ready",
        "reason": "Kombo is unreachable at KOMBO_BASE_URL",
    }


def test_without_a_key_the_app_needs_pass_through(gateway_settings: Settings) -> None:
    with pytest.raises(ValueError, match="Kombo API key"):
        create_app(dataclasses.replace(gateway_settings, api_key=None))
