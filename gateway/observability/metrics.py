"""Prometheus metrics of one gateway app, in a registry of its own, summed across workers.

Usage::

    metrics = GatewayMetrics()
    metrics.cache_lookups.labels(kind="page", result="hit").inc()
    metrics.exposition()                       # the text `/metrics` serves

    with shared_between_workers():             # in the supervisor, around its workers
        supervisor.run()

One registry per app (not the process-global one), so several apps in one process,
as in tests, never collide. The names are listed in docs/operations.md.

With several workers (`serve --workers N`) every worker counts in files of its own in
one directory (prometheus-client's multiprocess mode) and `/metrics`, whichever worker
answers it, sums them all. Summing was chosen over a `worker` label: counters then
never go backwards when a worker dies and is replaced (its files stay and are still
added), and dashboards need no `sum by` over pids that change with every restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.config import ConfigError

#: prometheus-client's switch: when a process imports it with this variable set,
#: every metric value lives in a file of that process in this directory.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Batch sizes go up to Kombo's 250 IDs per call.
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 150, 200, 250)
# Latencies from a cache-served 5 ms to the 30 s upstream read timeout.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)


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
        self.shared_cache_lookups = Counter(
            "gateway_shared_cache_lookups",
            "Reads of the cache shared through Redis (level 2, read after a miss of the "
            "process's own cache): kind page or job; result hit or miss.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.response_cache_lookups = Counter(
            "gateway_response_cache_lookups",
            "GraphQL requests looked up in the response cache (whole answers, before "
            "execution): result hit (this process), shared_hit (Redis), miss, or bypass "
            "(Cache-Control: no-cache: executed, then kept).",
            ["result"],
            registry=self.registry,
        )
        self.response_cache_stores = Counter(
            "gateway_response_cache_stores",
            "Answers offered to the response cache after execution: result kept, or not "
            "kept: errors (an answer with an error), too_large (over the per-entry cap), "
            "expired (the upstream answers it was built from expire first).",
            ["result"],
            registry=self.registry,
        )
        self.redis_up = Gauge(
            "gateway_redis_up",
            "1 while Redis answers (or none is configured: nothing to be down), 0 while "
            "the gateway skips it after failures; with several workers, the lowest.",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.redis_up.set(1)
        self.redis_errors = Counter(
            "gateway_redis_errors",
            "Redis operations that failed or took too long (each then fell back to "
            "in-process behaviour), by operation.",
            ["operation"],
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

        # Request-level and upstream latency (`gateway.http.observability` and
        # `gateway.upstream.instrumentation` record them).
        self.graphql_requests = Counter(
            "gateway_graphql_requests",
            "Requests to the GraphQL endpoint, by HTTP status of the answer.",
            ["status"],
            registry=self.registry,
        )
        self.graphql_errors = Counter(
            "gateway_graphql_errors",
            "GraphQL errors returned, by contract code (extensions.code).",
            ["code"],
            registry=self.registry,
        )
        self.graphql_request_duration = Histogram(
            "gateway_graphql_request_duration_seconds",
            "Time from receiving a GraphQL request to having sent its answer.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Per persisted document (`gateway.http.persisted`): which shipped operation is
        # slow or failing. Labels are trusted documents' ids (a bounded list, the
        # operator's file) or `apq` for every document registered by APQ.
        self.document_requests = Counter(
            "gateway_persisted_document_requests",
            "Requests that ran a persisted document, by document and HTTP status.",
            ["document", "status"],
            registry=self.registry,
        )
        self.document_errors = Counter(
            "gateway_persisted_document_errors",
            "GraphQL errors of requests that ran a persisted document, by document and "
            "contract code (a batch's errors count for each of its documents).",
            ["document", "code"],
            registry=self.registry,
        )
        self.document_duration = Histogram(
            "gateway_persisted_document_duration_seconds",
            "Time from receiving a request that ran a persisted document to having sent "
            "its answer, by document.",
            ["document"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_request_duration = Histogram(
            "kombo_upstream_request_duration_seconds",
            "Time from sending one request to Kombo to its response headers, retries "
            "counted one by one; calls that got no answer (timeouts) are not in it.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.webhooks = Counter(
            "gateway_webhooks",
            "Requests to POST /webhooks/kombo, by outcome: invalidated (an integration's "
            "cached answers dropped), repeated, ignored (another event or model), "
            "bad_signature, malformed, too_large, too_slow, rate_limited.",
            ["outcome"],
            registry=self.registry,
        )

        # The compiled fast path (`gateway.schema.fastpath.projection`): objects completed the
        # standard way instead. On good data both stay at zero.
        self.fastpath_fallbacks = Counter(
            "gateway_fastpath_fallbacks",
            "Objects the compiled fast path handed to graphql-core's standard completion: "
            "reason not_compiled (no projector could be compiled for the selection) or "
            "raised (the projector refused the object, e.g. bad data from Kombo).",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("not_compiled", "raised"):
            self.fastpath_fallbacks.labels(reason=reason)  # listed at 0 from the start

    def exposition(self, environ: Mapping[str, str] = os.environ) -> bytes:
        """The text `/metrics` serves: this app's registry, or, in multiprocess mode
        (`PROMETHEUS_MULTIPROC_DIR` set, as prometheus-client saw it at import), the
        sum over every worker's files, those of workers that died included."""
        path = environ.get(MULTIPROC_DIR_ENV)
        if not path:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def on_retry(self, error: BaseException) -> None:
        """Retry hook for the Kombo client."""
        code = getattr(error, "code", None)
        status = getattr(error, "status", None)
        reason = code or (f"http_{status}" if status else "transport")
        self.upstream_retries.labels(reason=reason).inc()


@contextlib.contextmanager
def shared_between_workers(environ: MutableMapping[str, str] = os.environ) -> Iterator[str]:
    """Multiprocess mode for the workers started inside the block; yields the directory.

    For the supervisor, before it starts any worker: workers are spawned (a fresh
    interpreter each) and inherit `environ`, so prometheus-client, imported anew in
    each, keeps every value in a file in the directory. Without an operator's
    `PROMETHEUS_MULTIPROC_DIR`, the directory is a private temporary one (mode 0700),
    removed at the end; an operator's is used as it is and left in place. It must be
    empty at start: files left from an earlier run would be added to the counts.

    Args:
        environ: the environment the workers will inherit (`os.environ`).

    Raises:
        ConfigError: `PROMETHEUS_MULTIPROC_DIR` is set but names no directory.
    """
    given = environ.get(MULTIPROC_DIR_ENV)
    if given:
        if not os.path.isdir(given):
            raise ConfigError(
                f"{MULTIPROC_DIR_ENV}={given!r} is not a directory: create it (empty) "
                "or unset the variable to use a private temporary one"
            )
        if any(Path(given).glob("*.db")):
            logging.getLogger("gateway").warning(
                "%s (%s) holds metric files from an earlier run: they are added to the counts",
                MULTIPROC_DIR_ENV,
                given,
            )
        yield given
        return
    path = tempfile.mkdtemp(prefix="kombo-gateway-metrics-")  # mode 0700
    environ[MULTIPROC_DIR_ENV] = path
    try:
        yield path
    finally:
        environ.pop(MULTIPROC_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
