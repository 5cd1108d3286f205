"""The per-request context every resolver receives as `info.context`.

Usage in a resolver::

    def resolve(info: strawberry.Info[Context, None]) -> ...:
        integration = info.context.require_integration()
        job = await info.context.loaders.jobs(integration).load(kombo_id)

The HTTP layer builds one `Context` per GraphQL request (`gateway.http.app`), from
process-lifetime parts (the Kombo client) and request-lifetime parts (loaders,
the integration named by the request).
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
    #: Screening questions that have a precondition, mapped (by object identity) to
    #: their job's question list, so `preconditionQuestion` resolves within the job.
    question_siblings: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: Why the request's integration header was refused, reported by `require_integration`.
    integration_problem: str | None = None
    #: Most IDs one `nodes` call or one `JobFilter` list may carry.
    max_ids: int = 1_000
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
