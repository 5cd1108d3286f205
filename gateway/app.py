"""The ASGI application: `/graphql` (with GraphiQL), `/healthz`, `/readyz`, `/metrics`.

Usage::

    app = create_app(Settings.from_env(os.environ))
    # or, per worker: uvicorn --factory gateway.app:app_from_env

Lifetimes: the `httpx.AsyncClient` (pooled, explicit timeouts) and the Kombo client
live for the process and are opened in the lifespan; a `Context` with fresh loaders
is built for every GraphQL request.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import strawberry
from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from gateway.cache import CachedKombo, UpstreamCache, credential_fingerprint
from gateway.config import Settings
from gateway.context import INTEGRATION_HEADER, Context, choose_integration
from gateway.errors import BadUserInput, Code
from gateway.graphiql import ASSETS_URL_PREFIX, graphiql_assets_app, graphiql_page
from gateway.kombo import KomboClient
from gateway.loaders import Loaders
from gateway.metrics import GatewayMetrics
from gateway.retry import RetryPolicy
from gateway.schema import build_schema


def create_http_client(settings: Settings, metrics: GatewayMetrics) -> httpx.AsyncClient:
    """The process's pooled client for Kombo, with explicit timeouts."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.read_timeout
        ),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        event_hooks={"response": [metrics.on_upstream_response]},
    )


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context, offline GraphiQL, orjson and coded HTTP errors."""

    def __init__(self, schema: strawberry.Schema, gateway: GatewayState) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            # Request-shape problems (bad JSON, no query, wrong method): still a coded error.
            response = _error_response(exc.reason, Code.BAD_USER_INPUT, exc.status_code)
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        gateway = self._gateway
        problem = None
        try:
            integration = choose_integration(
                request.headers.get(INTEGRATION_HEADER), gateway.settings.integration_id
            )
        except BadUserInput as exc:
            integration, problem = None, str(exc)
        kombo = CachedKombo(
            gateway.kombo,
            gateway.cache,
            fingerprint=gateway.fingerprint,
            refresh=wants_fresh_data(request.headers.get("cache-control")),
            deadline=time.monotonic() + gateway.settings.request_timeout,
        )
        return Context(
            kombo=kombo,
            loaders=Loaders(kombo, gateway.metrics),
            integration_id=integration,
            integration_problem=problem,
        )

    async def render_graphql_ide(self, request: Any) -> HTMLResponse:
        return HTMLResponse(graphiql_page(graphql_endpoint=str(request.url.path)))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


class GatewayState:
    """Process-lifetime parts, opened and closed by the app's lifespan."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        if settings.api_key is None:
            raise ValueError("create_app needs a Kombo API key (the CLI provides the sandbox's)")
        self.settings = settings
        self.metrics = GatewayMetrics()
        self._own_http = http is None
        self.http = http or create_http_client(settings, self.metrics)
        self.kombo = KomboClient(
            self.http,
            base_url=settings.base_url,
            api_key=settings.api_key,
            retry=RetryPolicy(
                attempts=settings.retry_attempts, attempt_timeout=settings.read_timeout
            ),
            max_concurrency=settings.max_concurrency,
            request_timeout=settings.request_timeout,
            on_retry=self.metrics.on_retry,
        )
        self.fingerprint = credential_fingerprint(settings.api_key)
        self.cache = UpstreamCache(
            settings.cache_ttl,
            max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
            metrics=self.metrics,
        )

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()


def wants_fresh_data(cache_control: str | None) -> bool:
    """True for `Cache-Control: no-cache` (or `max-age=0`): skip cached reads, refresh them."""
    if not cache_control:
        return False
    directives = {part.strip().lower() for part in cache_control.split(",")}
    return "no-cache" in directives or "max-age=0" in directives


def _error_response(message: str, code: Code, status: int) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": str(code)}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(settings: Settings, *, http: httpx.AsyncClient | None = None) -> Starlette:
    """Build the gateway for `settings` (which must carry a Kombo key).

    Args:
        settings: the configuration.
        http: a client to use instead of building one (it then stays the caller's to close).
    """
    gateway = GatewayState(settings, http)
    view = GraphQLView(build_schema(), gateway)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    app = Starlette(
        routes=[
            # Every method reaches the view, so even a PUT gets a coded JSON error.
            Route("/graphql", view),
            Mount(ASSETS_URL_PREFIX, graphiql_assets_app()),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app


def app_from_env() -> Starlette:
    """App factory for uvicorn (`--factory`), so every worker reads the same environment."""
    return create_app(Settings.from_env(os.environ))
