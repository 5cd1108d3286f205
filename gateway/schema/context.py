"""The per-request context every resolver receives as `info.context`.

Usage in resolvers (`info` is a `strawberry.Info[Context, None]`)::

    >>> async def job(info, id):  # a Kombo ID or a Job global ID; None: no such job
    ...     return await info.context.load_job(id)
    >>> async def jobs(info, kombo_ids):  # the request's batched loader, directly
    ...     integration = info.context.require_integration()
    ...     return await info.context.loaders.jobs(integration).load_many(kombo_ids)

The HTTP layer builds one `Context` per GraphQL request (`gateway.http.view`), from
process-lifetime parts (the Kombo client) and request-lifetime parts (loaders,
the integration named by the request). Built by hand, here over the sandbox in memory::

    >>> import asyncio, httpx, types
    >>> from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
    >>> from gateway.observability.metrics import GatewayMetrics
    >>> from gateway.sandbox.app import create_sandbox_app
    >>> from gateway.upstream.cache import CachedKombo, UpstreamCache
    >>> from gateway.upstream.kombo import KomboClient
    >>> from gateway.upstream.loaders import Loaders
    >>> http = httpx.AsyncClient(transport=httpx.ASGITransport(create_sandbox_app()))
    >>> settings = Settings(base_url="http://sandbox/v1")
    >>> client = KomboClient.from_settings(http, settings, api_key=SANDBOX_API_KEY)
    >>> kombo = CachedKombo(client, UpstreamCache.disabled(), fingerprint="example")
    >>> def request_info(integration_id):  # what resolvers read of one request's `info`
    ...     loaders = Loaders(kombo, GatewayMetrics(), max_calls=settings.isolation_calls)
    ...     context = Context(
    ...         kombo=kombo,
    ...         loaders=loaders,
    ...         integration_id=integration_id,
    ...         max_ids=settings.max_ids,
    ...     )
    ...     return types.SimpleNamespace(context=context)
    >>> integration = SANDBOX_INTEGRATION_IDS[0]
    >>> asyncio.run(job(request_info(integration), "FnCRC36mz7mUeEYy1Y2F7A6i"))["name"]
    'Lead HR Generalist - Payroll'
    >>> ids = ["FnCRC36mz7mUeEYy1Y2F7A6i", "0" * 24]
    >>> [found and found["status"] for found in asyncio.run(jobs(request_info(integration), ids))]
    ['OPEN', None]
    >>> asyncio.run(http.aclose())

A request that names no integration, where none is configured, is refused::

    >>> request_info(None).context.require_integration()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    gateway.errors.BadUserInput: No integration: send the `X-Integration-Id` header or ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import BadUserInput
from gateway.observability.metrics import GatewayMetrics
from gateway.schema.ids import parse_job_id
from gateway.upstream.cache import CachedKombo
from gateway.upstream.loaders import Loaders

INTEGRATION_HEADER = "X-Integration-Id"
# Kombo integration IDs look like `personio:CBNMt7dSNCzBdnRTx87dev4E`.
_INTEGRATION_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}:[A-Za-z0-9_\-]{1,128}")


@dataclass(slots=True)
class Context:
    """What one GraphQL request resolves with."""

    kombo: CachedKombo
    loaders: Loaders
    #: The integration the request uses; None when neither header nor default named one.
    integration_id: str | None
    #: Most IDs one `nodes` call or one `JobFilter` list may carry (`GATEWAY_MAX_IDS`).
    max_ids: int
    #: Screening questions that have a precondition, mapped (by object identity) to
    #: their job's question list, so `preconditionQuestion` resolves within the job.
    question_siblings: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: Why the request's integration header was refused, reported by `require_integration`.
    integration_problem: str | None = None
    #: Keys the cursors this request issues and accepts (`gateway.schema.pagination.cursor_key`).
    cursor_key: bytes = b""
    #: The app's metrics, for what the schema's executor counts (fast-path fallbacks);
    #: None: nothing is counted.
    metrics: GatewayMetrics | None = None

    def check_id_count(self, count: int, argument: str) -> None:
        """Raises BadUserInput when a list argument carries more IDs than allowed."""
        if count > self.max_ids:
            raise BadUserInput(
                f"`{argument}` takes at most {self.max_ids} values (GATEWAY_MAX_IDS), got {count}"
            )

    def require_integration(self) -> str:
        """The request's integration.

        Raises:
            BadUserInput: the request named none and no default is configured.
        """
        if self.integration_problem is not None:
            raise BadUserInput(self.integration_problem)
        if self.integration_id is None:
            raise BadUserInput(
                f"No integration: send the `{INTEGRATION_HEADER}` header "
                "or configure KOMBO_INTEGRATION_ID"
            )
        return self.integration_id

    async def load_job(self, job_id: str) -> Any:
        """The job a caller named (Kombo ID or Job global ID) through the request's batched
        loader, or None when Kombo has no such job."""
        kombo_id = parse_job_id(job_id)
        return await self.loaders.jobs(self.require_integration()).load(kombo_id)


def requested_integration(header_value: str | None) -> str | None:
    """The integration the request's header names, or None without one (access.py then
    picks the caller's default).

    Raises:
        BadUserInput: the header is present but is not an integration ID.
    """
    if header_value is None:
        return None
    value = header_value.strip()
    if not _INTEGRATION_ID.fullmatch(value):
        raise BadUserInput(
            f"`{INTEGRATION_HEADER}` must be a Kombo integration ID like "
            "`personio:CBNMt7dSNCzBdnRTx87dev4E`"
        )
    return value
