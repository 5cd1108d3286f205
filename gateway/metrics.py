"""Prometheus metrics of one gateway app, in a registry of its own.

Usage::

    metrics = GatewayMetrics()
    metrics.cache_lookups.labels(kind="page", result="hit").inc()
    generate_latest(metrics.registry)          # the text `/metrics` serves

One registry per app (not the process-global one), so several apps in one process,
as in tests, never collide. The names are listed in the README.
"""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram

# Batch sizes go up to Kombo's 250 IDs per call.
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 150, 200, 250)


class GatewayMetrics:
    """Counters of upstream traffic, the cache and by-ID batching."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.upstream_requests = Counter(
            "kombo_upstream_requests",
            "HTTP requests sent to Kombo, by status of the answer.",
            ["status"],
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "gateway_cache_lookups",
            "Reads of the upstream cache: kind page (a whole Kombo answer) or job "
            "(one job, e.g. primed from a page); result hit or miss.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.upstream_coalesced = Counter(
            "gateway_upstream_coalesced",
            "Upstream calls saved because an identical call was already in flight.",
            registry=self.registry,
        )
        self.lookups = Counter(
            "gateway_lookups",
            "By-ID job look-ups requested (job, node, nodes, _entities), duplicates included.",
            registry=self.registry,
        )
        self.lookups_coalesced = Counter(
            "gateway_lookups_coalesced",
            "By-ID look-ups answered without an ID of their own in an upstream call "
            "(duplicates in a request, and cache hits).",
            registry=self.registry,
        )
        self.lookup_batch_size = Histogram(
            "gateway_lookup_batch_size",
            "Distinct job IDs per batched `ids` upstream call.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

        self.upstream_retries = Counter(
            "kombo_upstream_retries",
            "Upstream calls retried, by what failed: a Kombo code, an HTTP status, or transport.",
            ["reason"],
            registry=self.registry,
        )

    def on_retry(self, error: BaseException) -> None:
        """Retry hook for the Kombo client."""
        code = getattr(error, "code", None)
        status = getattr(error, "status", None)
        reason = code or (f"http_{status}" if status else "transport")
        self.upstream_retries.labels(reason=reason).inc()

    async def on_upstream_response(self, response: httpx.Response) -> None:
        """httpx response hook: counts every answer Kombo gave, retries included."""
        self.upstream_requests.labels(status=str(response.status_code)).inc()
