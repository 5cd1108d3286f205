"""The ASGI application: `/graphql` (with GraphiQL), `/healthz`, `/readyz`, `/metrics`,
and `POST /webhooks/kombo` while `KOMBO_WEBHOOK_SECRET` is set; any other path or
method gets a coded JSON error naming what exists.

Usage::

    app = create_app(Settings.from_env(os.environ))
    # or, per worker: uvicorn --factory gateway.http.app:app_from_env

Lifetimes: the `httpx.AsyncClient` (pooled, explicit timeouts) and the Kombo client
live for the process and are opened in the lifespan; a `Context` with fresh loaders
is built for every GraphQL request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ExceptionHandler

from gateway.config import Settings
from gateway.errors import Code
from gateway.http.graphiql import ASSETS_URL_PREFIX, graphiql_assets_app
from gateway.http.observability import GRAPHQL_PATH, ObservabilityMiddleware
from gateway.http.persisted import PersistedDocuments
from gateway.http.state import GatewayState, warn_if_open
from gateway.http.token_file import TokensFileWatcher, apply_token_changes
from gateway.http.view import GraphQLView, error_response
from gateway.http.webhook_signature import WEBHOOK_PATH
from gateway.http.webhooks import KomboWebhook
from gateway.observability.logs import configure_logging
from gateway.observability.tracing import enable_tracing
from gateway.schema.build import GatewaySchema, QueryLimits, build_schema
from gateway.schema.private_api import graphql_schema
from gateway.schema.trusted_documents import TrustedDocuments, load_trusted_documents


def create_app(settings: Settings, *, http: httpx.AsyncClient | None = None) -> Starlette:
    """Build the gateway for `settings` (which must carry a Kombo key).

    Args:
        settings: the configuration.
        http: a client to use instead of building one (it then stays the caller's to close).
    """
    gateway = GatewayState(settings, http)
    schema, trusted = served_schema(settings)
    persisted = PersistedDocuments.from_settings(
        settings,
        trusted=trusted,
        store=gateway.apq,
        prepared=schema.documents,
        schema=graphql_schema(schema),
    )
    view = GraphQLView(schema, gateway, persisted)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problem = await gateway.ready.problem()
        if problem is not None:
            return JSONResponse({"status": "not ready", "reason": problem}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        # Summed over every worker with `serve --workers N` (see `gateway.observability.metrics`).
        return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warn_if_open(settings, gateway.access)
        if settings.gc_tuning:
            tune_garbage_collector()
        watching = None
        if settings.tokens_file is not None:
            watcher = TokensFileWatcher(settings.tokens_file, settings.tokens)
            watching = asyncio.create_task(apply_token_changes(watcher, gateway.access))
        try:
            yield
        finally:
            if watching is not None:
                watching.cancel()
            await gateway.aclose()

    routes: list[BaseRoute] = [
        # Every method reaches the view, so even a PUT gets a coded JSON error.
        Route(GRAPHQL_PATH, view),
        Mount(ASSETS_URL_PREFIX, graphiql_assets_app()),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if settings.webhook_secret is not None:
        # No secret, no route: the path is then a 404 like any unknown one.
        routes.append(Route(WEBHOOK_PATH, KomboWebhook(gateway).handle, methods=["POST"]))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=routing_error_handlers(routes, graphiql=settings.graphiql),
    )
    # Outermost, so every answer (errors included) carries its request id and is counted.
    app.add_middleware(ObservabilityMiddleware, metrics=gateway.metrics)
    return app


def served_schema(settings: Settings) -> tuple[GatewaySchema, TrustedDocuments | None]:
    """The schema `settings` serve and their trusted documents, each parsed and validated
    (once per worker: a document that does not validate stops start-up, never fails a
    request later); what `prepare_for_serving` built, if it was for these settings.

    Raises:
        ConfigError: `GATEWAY_PERSISTED_DOCUMENTS` cannot be served (each id named).
    """
    global _prepared
    key = (QueryLimits.from_settings(settings), settings.persisted_documents)
    prepared, _prepared = _prepared, None  # handed over once: the next app builds its own
    if prepared is not None and prepared[0] == key:
        return prepared[1], prepared[2]
    schema = build_schema(key[0])
    trusted = load_trusted_documents(key[1], schema) if key[1] else None
    return schema, trusted


#: What `serve` built before starting (`prepare_for_serving`), for the first app this
#: process builds with the same limits and documents (`serve --workers 1`).
_prepared: tuple[tuple[QueryLimits, str | None], GatewaySchema, TrustedDocuments | None] | None = (
    None
)


def prepare_for_serving(settings: Settings) -> None:
    """Build and check what `settings` serve, before `serve` starts anything: a bad
    persisted-documents file is then one message (ConfigError), not a traceback per
    worker; with one worker, its app reuses what was built here instead of building it
    again.

    Raises:
        ConfigError: as `served_schema`.
    """
    global _prepared
    schema, trusted = served_schema(settings)
    _prepared = (
        (QueryLimits.from_settings(settings), settings.persisted_documents),
        schema,
        trusted,
    )


def routing_error_handlers(
    routes: Sequence[BaseRoute], *, graphiql: bool
) -> dict[Any, ExceptionHandler]:
    """Starlette's 404 (no such path) and 405 (a method a path does not answer) as coded
    JSON errors, like every other error of the gateway, each naming what would work.

    Starlette raises these as `HTTPException`s, which its exception middleware (inside
    `ObservabilityMiddleware`, so they keep their `X-Request-Id`) hands to these.
    """
    listed = ", ".join(
        # A route without methods is an ASGI app: only `/graphql`, which takes GET and POST.
        f"{'/'.join(sorted((route.methods or {'GET', 'POST'}) - {'HEAD'}))} {route.path}"
        for route in routes
        if isinstance(route, Route)
    )
    if graphiql:
        listed += f" (GraphiQL: GET {GRAPHQL_PATH} from a browser)"

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(
            f"There is nothing at this path. The gateway answers: {listed}",
            Code.BAD_USER_INPUT,
            404,
        )

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        given = exc.headers if isinstance(exc, HTTPException) else None
        # Static files raise 405 without `Allow`; they, like every plain route, take GET.
        # Sorted: Starlette lists a route's methods in set order, which varies by process.
        allow = ", ".join(sorted((given or {}).get("Allow", "GET, HEAD").split(", ")))
        response = error_response(
            f"{request.method} is not supported on this path: use {allow.replace(', ', ' or ')}",
            Code.BAD_USER_INPUT,
            405,
        )
        response.headers["Allow"] = allow
        return response

    return {404: not_found, 405: method_not_allowed}


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
