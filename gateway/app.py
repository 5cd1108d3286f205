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
import gc
import logging
import os
from collections.abc import AsyncIterator

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from gateway.config import Settings
from gateway.graphiql import ASSETS_URL_PREFIX, graphiql_assets_app
from gateway.observability import (
    GRAPHQL_PATH,
    ObservabilityMiddleware,
    configure_logging,
    enable_tracing,
)
from gateway.schema import QueryLimits, build_schema
from gateway.state import GatewayState, warn_if_open
from gateway.view import GraphQLView


def create_app(settings: Settings, *, http: httpx.AsyncClient | None = None) -> Starlette:
    """Build the gateway for `settings` (which must carry a Kombo key).

    Args:
        settings: the configuration.
        http: a client to use instead of building one (it then stays the caller's to close).
    """
    gateway = GatewayState(settings, http)
    limits = QueryLimits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        introspection=settings.introspection,
        max_batch=settings.max_batch,
        max_fields=settings.max_fields,
    )
    view = GraphQLView(build_schema(limits), gateway)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problem = await gateway.ready.problem()
        if problem is not None:
            return JSONResponse({"status": "not ready", "reason": problem}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warn_if_open(settings, gateway.access)
        if settings.gc_tuning:
            tune_garbage_collector()
        try:
            yield
        finally:
            await gateway.aclose()

    app = Starlette(
        routes=[
            # Every method reaches the view, so even a PUT gets a coded JSON error.
            Route(GRAPHQL_PATH, view),
            Mount(ASSETS_URL_PREFIX, graphiql_assets_app()),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    # Outermost, so every answer (errors included) carries its request id and is counted.
    app.add_middleware(ObservabilityMiddleware, metrics=gateway.metrics)
    return app


def tune_garbage_collector() -> None:
    """Keep the cycle collector off the hot path.

    Parsing one Kombo page allocates tens of thousands of dicts and lists; with
    CPython's default thresholds that triggers full collections which walk every
    long-lived object of the process (schemas, modules) again and again. Freezing what
    exists after start-up and collecting young objects less often halved the cost of
    parsing a 100-job page in our measurements. Kombo's payloads hold no reference
    cycles, so reference counting still frees them at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def app_from_env() -> Starlette:
    """App factory for uvicorn (`--factory`), so every worker reads the same environment:
    JSON logs, optional tracing, then the app."""
    settings = Settings.from_env(os.environ)
    configure_logging(settings.log_level)
    if settings.tracing and not enable_tracing():
        logging.getLogger("gateway").warning(
            "GATEWAY_TRACING is on but the OpenTelemetry SDK is not installed: no spans"
        )
    return create_app(settings)
