"""The pass-through proxy: the floor for any Python gateway on the gateway's own stack.

Usage::

    python -m bench.proxy --port 8100 --upstream http://127.0.0.1:8001/v1 [--workers 2]

`POST /graphql?<Kombo parameters>` reads the request body and ignores it, makes one
`GET <upstream>/ats/jobs?<the same parameters>` with the gateway's credentials and
headers, through `gateway.http.state.create_http_client` (the gateway's pool limits, timeouts
and event hooks), and answers with the upstream body bytes unchanged. The bench puts in
the query string exactly the parameters the gateway sent for the GraphQL query being
compared (read from the sandbox's request log). Starlette routed, served by uvicorn with
the options `kombo-gateway serve` uses; `GET /healthz` answers 200.

Settings come from the environment like the gateway's (`KOMBO_API_KEY`,
`KOMBO_INTEGRATION_ID`; `--upstream` sets `KOMBO_BASE_URL`), so every uvicorn worker
builds the same app.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
from gateway.http.serving import uvicorn_options
from gateway.http.state import create_http_client
from gateway.observability.metrics import GatewayMetrics
from gateway.upstream.kombo import JOBS_PATH

_JSON = "application/json"


def create_proxy_app(settings: Settings) -> Starlette:
    """The proxy for `settings` (base URL, key and default integration of the gateway)."""
    metrics = GatewayMetrics()
    http = create_http_client(settings, metrics)
    jobs_url = settings.base_url + JOBS_PATH
    headers = {
        "Authorization": f"Bearer {settings.api_key}",
        "X-Integration-Id": str(settings.integration_id),
        "Accept": _JSON,
    }

    async def forward(request: Request) -> Response:
        await request.body()  # read like a gateway would, then ignored
        try:
            upstream = await http.get(jobs_url, params=dict(request.query_params), headers=headers)
        except httpx.RequestError as exc:
            return Response(f"upstream failed: {type(exc).__name__}", status_code=502)
        if upstream.status_code != 200:
            return Response(upstream.content, status_code=502, media_type=_JSON)
        return Response(upstream.content, media_type=_JSON)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    return Starlette(
        routes=[
            Route("/graphql", forward, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """uvicorn factory: each worker reads the same environment."""
    return create_proxy_app(Settings.from_env(os.environ))


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="Kombo base URL, e.g. .../v1")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ["KOMBO_BASE_URL"] = args.upstream
    os.environ.setdefault("KOMBO_API_KEY", SANDBOX_API_KEY)
    os.environ.setdefault("KOMBO_INTEGRATION_ID", SANDBOX_INTEGRATION_IDS[0])
    uvicorn.run(
        "bench.proxy:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=max(1, min(args.workers, 64)),
        **uvicorn_options(Settings.from_env(os.environ)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
